#!/usr/bin/env bash
# Remux a ripped movie: the longest title is the main feature; it becomes
# OUTPUT_DIR/<title>.mkv with its main video and the wanted audio and subtitles. The
# other titles are kept as extras, OUTPUT_DIR/Extra NN.mkv in title order, which filing
# puts in the movie's Other/ folder (Plex's local extras); MP_EXTRAS=drop leaves them out.
#   organize-and-remux-movie.sh INPUT_DIR OUTPUT_DIR
set -euo pipefail
# shellcheck source=lib-media.sh
source "$(dirname -- "$(readlink -f -- "$0")")/lib-media.sh"

input_dir=${1:?usage: organize-and-remux-movie.sh INPUT_DIR OUTPUT_DIR}
output_dir=${2:?usage: organize-and-remux-movie.sh INPUT_DIR OUTPUT_DIR}
title=${MP_ITEM_TITLE:-$(basename -- "$input_dir")}
mkdir -p -- "$output_dir"

main="" longest=-1
for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "no titles in $input_dir" >&2; exit 1; }
  length=$(length_of "$file")
  if (( length > longest )); then main=$file longest=$length; fi
done
echo "main feature: $(basename -- "$main")"
remux "$main" "$output_dir/$title.mkv"

extra=0
for file in "$input_dir"/*.mkv; do
  [[ $file == "$main" ]] && continue
  if [[ ${MP_EXTRAS:-keep} == drop ]]; then
    echo "dropped (MP_EXTRAS=drop): $(basename -- "$file")"
    continue
  fi
  extra=$((extra + 1))
  printf -v name 'Extra %02d.mkv' "$extra"
  echo "extra: $(basename -- "$file") -> $name"
  remux "$file" "$output_dir/$name"
done

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$output_dir/.pipeline/remux.done" "$output_dir/.pipeline/remux.timestamp"
mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/remux.done"
date -Iseconds > "$output_dir/.pipeline/remux.timestamp"
