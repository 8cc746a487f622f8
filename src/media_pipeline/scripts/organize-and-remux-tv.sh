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

# Titles by number, never by path: bash before 5.2 expands an array key in arithmetic
# a second time, so a folder named $(...) would run.
titles=() lengths=() play_all=()
for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "no titles in $input_dir" >&2; exit 1; }
  titles+=("$file")
  lengths+=("$(length_of "$file")")
done

# longest_left: the length of the longest title not (yet) taken for a "play all".
longest_left() {
  local number longest=0
  for number in "${!titles[@]}"; do
    if [[ -z ${play_all[number]:-} ]] && (( lengths[number] > longest )); then
      longest=${lengths[number]}
    fi
  done
  echo "$longest"
}

# A "play all" title is the disc's episodes end to end: the longest title is one when it
# lasts as long as the episodes among the others together (two or more, each at least
# half as long as the longest of them), within 5 seconds and never more than a tenth of
# the shortest (short titles are not mistaken). Left out, so its episodes are kept; and
# again, for a disc with a second one.
while true; do
  longest=$(longest_left)
  candidate=-1 sum=0 shortest=0 count=0 names=""
  for number in "${!titles[@]}"; do
    if (( candidate < 0 && lengths[number] == longest )) && [[ -z ${play_all[number]:-} ]]; then
      candidate=$number
    fi
  done
  (( candidate >= 0 && longest > 0 )) || break
  play_all[candidate]=checking
  rest=$(longest_left)
  for number in "${!titles[@]}"; do
    if [[ -n ${play_all[number]:-} ]] || (( lengths[number] * 2 < rest )); then
      continue
    fi
    sum=$((sum + lengths[number])) count=$((count + 1))
    names+="${names:+ + }$(basename -- "${titles[number]}")"
    if (( shortest == 0 || lengths[number] < shortest )); then shortest=${lengths[number]}; fi
  done
  slack=$(( shortest / 10 < 5000 ? shortest / 10 : 5000 ))
  difference=$(( longest > sum ? longest - sum : sum - longest ))
  if (( count < 2 || difference > slack )); then
    play_all[candidate]=""
    break
  fi
  play_all[candidate]=$names
done

longest=$(longest_left)
episode=0
for number in "${!titles[@]}"; do
  file=${titles[number]}
  if [[ -n ${play_all[number]:-} ]]; then
    echo "skipped (a \"play all\": as long as ${play_all[number]} together): $(basename -- "$file")"
  elif (( lengths[number] * 2 >= longest )); then
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
