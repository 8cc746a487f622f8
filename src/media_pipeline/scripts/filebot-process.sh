#!/usr/bin/env bash
# File a transcoded item into the library at DESTINATION: for a movie (MP_ITEM_TYPE=movie)
# a file path, for a TV disc its season's folder.
#
# mp says where each file goes: MP_FILES holds one "FILE<TAB>PLACE" line per file to
# file, PLACE being below the item's folder in the library (the movie's folder, or the
# show's above DESTINATION): "Demo Show (2021) - s01e04.mkv" under "Season 01/",
# "Featurettes/Making of.mkv". Files it does not list were left out at review and stay
# in staging. Run by hand without MP_FILES, a movie's <title>.mkv goes to DESTINATION and
# its other files to Other/ beside it; a TV disc's files go into DESTINATION under their
# own names, or as "<show folder> - sSSeEE.mkv" numbered from MP_FIRST_EPISODE.
#
# With FileBot installed, FileBot copies each file (plain file mode, the name fixed by
# mp: nothing of a title is ever read as a FileBot format expression). Never overwrites
# a file in the library, and removes a staged file only after its copy is verified; run
# again after a failure, it goes on where it stopped.
#   filebot-process.sh INPUT_DIR DESTINATION
set -euo pipefail

input_dir=${1:?usage: filebot-process.sh INPUT_DIR DESTINATION}
destination=${2:-${MP_DESTINATION:?no destination given}}
title=${MP_ITEM_TITLE:?no item title given}
kind=${MP_ITEM_TYPE:-movie}
scratch="$input_dir/.pipeline/filing"

# copy_to SOURCE PART: copy SOURCE to PART, a temporary name beside its target. FileBot
# gets a hard link of SOURCE named as PART (so its format is only "{fn}", the link's own
# name) and copies it into PART's folder.
copy_to() {
  local file=$1 part=$2 link
  if command -v filebot >/dev/null 2>&1 && [[ -z ${MP_NO_FILEBOT:-} ]]; then
    link="$scratch/$(basename -- "$part")"
    [[ ! -L $scratch ]] || { echo "$scratch is a link: not filing through it" >&2; exit 1; }
    mkdir -p -- "$scratch"
    rm -f -- "$link"
    ln -- "$file" "$link" 2>/dev/null || cp -- "$file" "$link"
    filebot -rename "$link" --db file --format '{fn}' --action copy --conflict fail \
      -unixfs -no-xattr --output "$(dirname -- "$part")"
    rm -f -- "$link"
  else
    cp -n -- "$file" "$part"
  fi
}

# file_one SOURCE TARGET: copy, verify, then remove the staged file. A target already
# there with the same bytes is this file filed by an earlier run that stopped.
file_one() {
  local file=$1 target=$2 part
  if [[ -L $target ]]; then
    echo "$target is a link: refusing to file onto it" >&2
    exit 1
  fi
  if [[ -e $target ]]; then
    if cmp -s -- "$file" "$target"; then
      echo "already filed: $target"
      rm -- "$file"
      return
    fi
    echo "refusing to overwrite $target" >&2
    exit 1
  fi
  # A folder in the library that is a link (Featurettes -> /etc) is not filed through.
  if [[ -L $(dirname -- "$target") ]]; then
    echo "$(dirname -- "$target") is a link: not filing through it" >&2
    exit 1
  fi
  mkdir -p -- "$(dirname -- "$target")"
  # "<name>.part.mkv": the same extension, so FileBot keeps the name it is given.
  part="${target%.*}.part.${target##*.}"
  rm -f -- "$part"  # a copy an earlier run left half made
  copy_to "$file" "$part"
  cmp -s -- "$file" "$part" || { echo "copy of $file does not match" >&2; exit 1; }
  mv -n -- "$part" "$target"
  # mv -n does nothing, and may say nothing, when something took the name meanwhile.
  cmp -s -- "$file" "$target" || { echo "$target is not the copy of $file" >&2; exit 1; }
  echo "filed $(basename -- "$file") -> $target"
  rm -- "$file"
}

if [[ -n ${MP_FILES:-} ]]; then
  if [[ $kind == tv ]]; then base=$(dirname -- "${destination%/}"); else base=$(dirname -- "$destination"); fi
  while IFS=$'\t' read -r name place; do
    [[ -n $name ]] || continue
    if [[ ! -e $input_dir/$name ]]; then
      # Filed by an earlier run that stopped after removing the staged file.
      [[ -e $base/$place ]] && { echo "already filed: $base/$place"; continue; }
      echo "no $name in $input_dir to file" >&2
      exit 1
    fi
    file_one "$input_dir/$name" "$base/$place"
  done <<< "$MP_FILES"
elif [[ $kind == tv ]]; then
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
