#!/usr/bin/env bash
# Remux a ripped movie: the longest title is the main feature; it becomes
# OUTPUT_DIR/<title>.mkv with its main video and the wanted audio and subtitles.
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

mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/remux.done"
date -Iseconds > "$output_dir/.pipeline/remux.timestamp"
