#!/usr/bin/env bash
# File a transcoded item into the library at DESTINATION: for a movie (MP_ITEM_TYPE=movie)
# a file path, its other files (its extras) going to Other/ beside it; for a TV disc a
# season's folder, in which its episodes become "<show folder> - sSSeEE.mkv", numbered from
# MP_FIRST_EPISODE in season MP_SEASON (mp numbers the discs of a season as one run).
# Uses FileBot when installed. Never overwrites a file in the library, and removes a
# staged file only after its copy is verified; run again after a failure, it goes on
# where it stopped.
#   filebot-process.sh INPUT_DIR DESTINATION
set -euo pipefail

input_dir=${1:?usage: filebot-process.sh INPUT_DIR DESTINATION}
destination=${2:-${MP_DESTINATION:?no destination given}}
title=${MP_ITEM_TITLE:?no item title given}

# file_one SOURCE TARGET: copy, verify, then remove the staged file. A target already
# there with the same bytes is this file filed by an earlier run that stopped.
file_one() {
  local file=$1 target=$2
  if [[ -e $target ]]; then
    if cmp -s -- "$file" "$target"; then
      echo "already filed: $target"
      rm -- "$file"
      return
    fi
    echo "refusing to overwrite $target" >&2
    exit 1
  fi
  mkdir -p -- "$(dirname -- "$target")"
  cp -n -- "$file" "$target.part"
  cmp -s -- "$file" "$target.part" || { echo "copy of $file does not match" >&2; exit 1; }
  mv -n -- "$target.part" "$target"
  echo "filed $(basename -- "$file") -> $target"
  rm -- "$file"
}

if command -v filebot >/dev/null 2>&1 && [[ -z ${MP_NO_FILEBOT:-} ]]; then
  filebot -rename "$input_dir" --output "$(dirname -- "$destination")" --conflict skip -non-strict
elif [[ ${MP_ITEM_TYPE:-movie} == tv ]]; then
  folder=${destination%/}/
  # Named for the show folder the person approved (a year added at the gate, say).
  show=$(basename -- "$(dirname -- "$folder")")
  files=("$input_dir"/*.mkv)
  [[ -e ${files[0]} ]] || { echo "nothing to file in $input_dir" >&2; exit 1; }
  position=0
  for file in "${files[@]}"; do
    position=$((position + 1))
    target="$folder$(basename -- "$file")"
    if [[ -n ${MP_FIRST_EPISODE:-} ]]; then
      # The disc's own episode number, from the remux's "Episode NN" name: the same on a
      # run after a failure, when the files filed before are no longer here.
      number=$position
      if [[ $(basename -- "$file") =~ Episode\ ([0-9]+)\.mkv$ ]]; then
        number=$((10#${BASH_REMATCH[1]}))
      fi
      printf -v name '%s - s%02de%02d.mkv' "$show" "$((10#${MP_SEASON:-1}))" \
        "$((10#$MP_FIRST_EPISODE + number - 1))"
      target="$folder$name"
    fi
    file_one "$file" "$target"
  done
else
  [[ $destination != */ ]] || { echo "a movie's destination is a file: $destination" >&2; exit 1; }
  files=("$input_dir"/*.mkv)
  [[ -e ${files[0]} ]] || { echo "nothing to file in $input_dir" >&2; exit 1; }
  # The movie is <title>.mkv, or the one file there is; with the movie filed by a run
  # that stopped, what is left are its extras.
  main="$input_dir/$title.mkv"
  if [[ ! -e $main ]]; then
    if (( ${#files[@]} == 1 )) && [[ $(basename -- "${files[0]}") != Extra\ * ]]; then
      main=${files[0]}
    elif [[ ! -e $destination ]]; then
      echo "several files and none is '$title.mkv': which is the movie? nothing filed" >&2
      exit 1
    fi
  fi
  for file in "${files[@]}"; do
    if [[ $file == "$main" ]]; then
      file_one "$file" "$destination"
    else
      file_one "$file" "$(dirname -- "$destination")/Other/$(basename -- "$file")"
    fi
  done
fi

mkdir -p -- "$input_dir/.pipeline"
touch -- "$input_dir/.pipeline/filebot.done"
date -Iseconds > "$input_dir/.pipeline/filebot.timestamp"
