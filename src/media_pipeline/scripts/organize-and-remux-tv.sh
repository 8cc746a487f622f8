#!/usr/bin/env bash
# Remux a ripped TV disc: titles at least half as long as the longest are episodes, in
# title order; each becomes OUTPUT_DIR/<show> - <disc label> - Episode NN.mkv.
#   organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR
set -euo pipefail
# shellcheck source=lib-media.sh
source "$(dirname -- "$(readlink -f -- "$0")")/lib-media.sh"

input_dir=${1:?usage: organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR}
output_dir=${2:?usage: organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR}
show=${MP_ITEM_TITLE:-show}
label=${MP_DISC_LABEL:-$(basename -- "$input_dir")}
mkdir -p -- "$output_dir"

declare -A lengths=()
longest=0
for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "no titles in $input_dir" >&2; exit 1; }
  length=$(length_of "$file")
  lengths[$file]=$length
  if (( length > longest )); then longest=$length; fi
done

episode=0
for file in "$input_dir"/*.mkv; do
  if (( lengths[$file] * 2 >= longest )); then
    episode=$((episode + 1))
    printf -v name '%s - %s - Episode %02d.mkv' "$show" "$label" "$episode"
    echo "episode $episode: $(basename -- "$file")"
    remux "$file" "$output_dir/$name"
  else
    echo "skipped (too short for an episode): $(basename -- "$file")"
  fi
done

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$output_dir/.pipeline/remux.done" "$output_dir/.pipeline/remux.timestamp"
mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/remux.done"
date -Iseconds > "$output_dir/.pipeline/remux.timestamp"
