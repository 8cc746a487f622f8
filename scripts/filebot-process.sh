#!/usr/bin/env bash
# File a transcoded item into the library at DESTINATION (a file path for a movie, a
# folder ending in / for a TV disc). Uses FileBot when installed. Never overwrites a file
# in the library, and removes a staged file only after its copy is verified.
# A movie's other files (its extras) go to Other/ beside it.
# A TV disc's files, in name order, become "<show> - sSSeEE.mkv" in DESTINATION, numbered
# from MP_FIRST_EPISODE in season MP_SEASON (mp numbers the discs of a season as one run).
#   filebot-process.sh INPUT_DIR DESTINATION
set -euo pipefail

input_dir=${1:?usage: filebot-process.sh INPUT_DIR DESTINATION}
destination=${2:-${MP_DESTINATION:?no destination given}}

if command -v filebot >/dev/null 2>&1 && [[ -z ${MP_NO_FILEBOT:-} ]]; then
  filebot -rename "$input_dir" --output "$(dirname -- "$destination")" --conflict skip -non-strict
else
  files=("$input_dir"/*.mkv)
  [[ -e ${files[0]} ]] || { echo "nothing to file in $input_dir" >&2; exit 1; }
  episode=${MP_FIRST_EPISODE:-}
  for file in "${files[@]}"; do
    if [[ $destination == */ && -n $episode ]]; then
      printf -v name '%s - s%02de%02d.mkv' "${MP_ITEM_TITLE:?}" "$((10#${MP_SEASON:-1}))" "$episode"
      target="$destination$name"
      episode=$((episode + 1))
    elif [[ $destination == */ ]]; then
      target="$destination$(basename -- "$file")"
    elif (( ${#files[@]} == 1 )) || [[ $(basename -- "$file") == "${MP_ITEM_TITLE:-}.mkv" ]]; then
      target=$destination
    else
      # A movie's extra: Plex's local extras folder beside the movie.
      target="$(dirname -- "$destination")/Other/$(basename -- "$file")"
    fi
    if [[ -e $target ]]; then
      echo "refusing to overwrite $target" >&2
      exit 1
    fi
    mkdir -p -- "$(dirname -- "$target")"
    cp -n -- "$file" "$target.part"
    cmp -s -- "$file" "$target.part" || { echo "copy of $file does not match" >&2; exit 1; }
    mv -n -- "$target.part" "$target"
    echo "filed $(basename -- "$file") -> $target"
    rm -- "$file"
  done
fi

mkdir -p -- "$input_dir/.pipeline"
touch -- "$input_dir/.pipeline/filebot.done"
date -Iseconds > "$input_dir/.pipeline/filebot.timestamp"
