#!/usr/bin/env bash
# Remux a ripped TV disc: titles at least half as long as the longest are episodes, in
# title order; each becomes OUTPUT_DIR/<show> - <disc label> - Episode NN.mkv. A "play
# all" title (any title as long as two or more others together) is left out, and the
# log says so.
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
length_unit=$(length_unit)
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

# sums_to TARGET NUMBER...: whether the titles NUMBER... (two or more) last as long as
# TARGET together, within the slack; sets parts to their names. With ffprobe (lengths
# in ms) the slack is 5 seconds, never more than a tenth of the shortest part (short
# titles are not mistaken). Without it lengths are byte sizes (length_of), and the
# slack is 1% of TARGET and 4 KiB a part (each file's own container header): a play-all
# of the episodes' own streams is within it, measured 1.07% over four 4-5 s titles and
# far less at a disc's sizes; titles encoded apart hardly ever add up that closely.
sums_to() {
  local target=$1 number sum=0 shortest=0 slack difference
  shift
  (( $# >= 2 )) || return 1
  parts=""
  for number; do
    (( lengths[number] > 0 )) || return 1  # a title ffprobe could not read adds nothing
    sum=$((sum + lengths[number]))
    if (( shortest == 0 || lengths[number] < shortest )); then shortest=${lengths[number]}; fi
    parts+="${parts:+ + }${titles[number]##*/}"
  done
  if [[ $length_unit == ms ]]; then
    slack=5000
    (( shortest / 10 >= slack )) || slack=$((shortest / 10))
  else
    slack=$((target / 100 + 4096 * $#))
  fi
  difference=$(( target > sum ? target - sum : sum - target ))
  (( difference <= slack ))
}

# A "play all" title is episodes end to end. Every title is checked, the shortest
# first (a play-all of half the disc is taken out before the whole disc's is checked,
# so it is never counted as part of it): it is one when it lasts as long as two or more
# titles shorter than it and not already taken for one, either a run of adjacent ones
# in title order (a play-all of some episodes, or of the extras), or all of them that
# are at least half as long as the longest of them (episodes with a menu loop between
# them). Left out, so its episodes are kept.
mapfile -t by_length < <(for number in "${!titles[@]}"; do echo "${lengths[number]} $number"; done |
  sort -k1,1n -k2,2n | cut -d' ' -f2)
for candidate in "${by_length[@]}"; do
  target=${lengths[candidate]}
  (( target > 0 )) || continue
  others=()
  for number in "${!titles[@]}"; do
    if (( number != candidate )) && [[ -z ${play_all[number]:-} ]] && (( lengths[number] < target )); then
      others+=("$number")
    fi
  done
  for ((first = 0; first < ${#others[@]} - 1; first++)); do
    run=${lengths[others[first]]}
    for ((last = first + 1; last < ${#others[@]}; last++)); do
      run=$((run + lengths[others[last]]))
      # Longer than any slack allows: a longer run is longer still.
      (( run <= target + 5000 + target / 50 + 4096 * (last - first + 1) )) || break
      if sums_to "$target" "${others[@]:first:last - first + 1}"; then
        play_all[candidate]=$parts
        continue 3
      fi
    done
  done
  longest_other=0
  for number in "${others[@]}"; do
    (( lengths[number] <= longest_other )) || longest_other=${lengths[number]}
  done
  episodes=()
  for number in "${others[@]}"; do
    (( lengths[number] * 2 < longest_other )) || episodes+=("$number")
  done
  if sums_to "$target" "${episodes[@]}"; then
    play_all[candidate]=$parts
  fi
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
