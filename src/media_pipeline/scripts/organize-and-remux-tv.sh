#!/usr/bin/env bash
# Remux a ripped TV disc: titles at least half as long as the longest are episodes, in
# title order; each becomes OUTPUT_DIR/<show> - <disc label> - Episode NN.mkv. A "play
# all" title (the episodes end to end) is left out, and the log says so.
#   organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR
set -euo pipefail
# shellcheck source=lib-media.sh
source "$(dirname -- "$(readlink -f -- "$0")")/lib-media.sh"

input_dir=${1:?usage: organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR}
output_dir=${2:?usage: organize-and-remux-tv.sh INPUT_DIR OUTPUT_DIR}
show=${MP_ITEM_TITLE:-show}
label=${MP_DISC_LABEL:-$(basename -- "$input_dir")}
mkdir -p -- "$output_dir"

declare -A lengths=() play_all=()
titles=()
for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "no titles in $input_dir" >&2; exit 1; }
  lengths[$file]=$(length_of "$file")
  titles+=("$file")
done

# longest_of TITLE...: the longest of the titles not found to be a "play all".
longest_of() {
  local file longest=0
  for file; do
    [[ -z ${play_all[$file]:-} ]] && (( lengths[$file] > longest )) && longest=${lengths[$file]}
  done
  echo "$longest"
}

# A "play all" title is the disc's episodes end to end: the longest title is one when it
# lasts as long as the episodes among the others together (two or more, each at least
# half as long as the longest of them), within 5 seconds and never more than a tenth of
# the shortest (short titles are not mistaken). Left out, so its episodes are kept; and
# again, for a disc with a second one.
while true; do
  longest=$(longest_of "${titles[@]}")
  candidate="" sum=0 shortest=0 count=0 names=""
  for file in "${titles[@]}"; do
    if [[ -z $candidate && -z ${play_all[$file]:-} ]] && (( lengths[$file] == longest )); then
      candidate=$file
    fi
  done
  [[ -n $candidate ]] || break
  play_all[$candidate]=checking
  rest=$(longest_of "${titles[@]}")
  for file in "${titles[@]}"; do
    if [[ -n ${play_all[$file]:-} ]] || (( lengths[$file] * 2 < rest || rest == 0 )); then
      continue
    fi
    sum=$((sum + lengths[$file])) count=$((count + 1))
    names+="${names:+ + }$(basename -- "$file")"
    if (( shortest == 0 || lengths[$file] < shortest )); then shortest=${lengths[$file]}; fi
  done
  slack=$(( shortest / 10 < 5000 ? shortest / 10 : 5000 ))
  difference=$(( longest > sum ? longest - sum : sum - longest ))
  if (( count < 2 || difference > slack )); then
    unset "play_all[$candidate]"
    break
  fi
  play_all[$candidate]=$names
done

longest=$(longest_of "${titles[@]}")
episode=0
for file in "${titles[@]}"; do
  if [[ -n ${play_all[$file]:-} ]]; then
    echo "skipped (a \"play all\": as long as ${play_all[$file]} together): $(basename -- "$file")"
  elif (( lengths[$file] * 2 >= longest )); then
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
