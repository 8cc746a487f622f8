#!/usr/bin/env bash
# Rip a disc into OUTPUT_DIR: every title as MKV, with makemkvcon when it is installed.
# Without makemkvcon (the demo, a test), copies the folder that stands for the disc:
# $MP_DISC_ROOT/<type>/<title>[/<disc label>]/. The drive: $MP_DEVICE (/dev/srN) when a
# disc in it started the rip (mp rip --device), else the first one makemkvcon finds.
# Titles are made under temporary dot names and renamed when complete: a retry after
# any failure goes on.
#   rip-disc.sh OUTPUT_DIR TITLE
set -euo pipefail
# shellcheck source=lib-media.sh
source "$(dirname -- "$(readlink -f -- "$0")")/lib-media.sh"

output_dir=${1:?usage: rip-disc.sh OUTPUT_DIR TITLE}
title=${2:?usage: rip-disc.sh OUTPUT_DIR TITLE}
mkdir -p -- "$output_dir"

if command -v makemkvcon >/dev/null 2>&1 && [[ -z ${MP_DISC_ROOT:-} ]]; then
  source="disc:0"
  if [[ -n ${MP_DEVICE:-} ]]; then
    source="dev:$MP_DEVICE"
  fi
  # Ripped into a dot folder and moved out once makemkvcon is done: a failed or killed
  # rip leaves no title under its final name, and the next attempt starts it anew.
  part=$(part_of "$output_dir/rip")
  rm -rf -- "$part"  # a killed run's (rm removes a link, never what it points to)
  mkdir -- "$part"
  echo "ripping '$title' from $source with makemkvcon"
  makemkvcon --robot mkv "$source" all "$part"
  for file in "$part"/*.mkv; do
    [[ -e $file ]] || continue
    target="$output_dir/$(basename -- "$file")"
    if made_already "$target"; then rm -f -- "$file"; else finish "$file" "$target"; fi
  done
  rm -rf -- "$part"
else
  source_dir="${MP_DISC_ROOT:?no makemkvcon and no MP_DISC_ROOT to copy a disc from}/${MP_ITEM_TYPE:-movie}/$title"
  if [[ -n ${MP_DISC_LABEL:-} ]]; then
    source_dir="$source_dir/$MP_DISC_LABEL"
  fi
  echo "no makemkvcon: copying the disc folder $source_dir"
  for file in "$source_dir"/*.mkv; do
    [[ -e $file ]] || { echo "no titles in $source_dir" >&2; exit 1; }
    target="$output_dir/$(basename -- "$file")"
    made_already "$target" && continue
    part=$(part_of "$target")
    rm -f -- "$part"
    cp -- "$file" "$part"
    finish "$part" "$target"
  done
fi

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$output_dir/.pipeline/rip.done" "$output_dir/.pipeline/rip.timestamp"
mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/rip.done"
date -Iseconds > "$output_dir/.pipeline/rip.timestamp"
