#!/usr/bin/env bash
# Transcode every MKV in INPUT_DIR into OUTPUT_DIR: x264 (or x265 with MP_CODEC=x265) at
# CRF $MP_CRF (default 22), audio and subtitles copied. Each file is made under a
# temporary dot name and renamed when complete: a retry after any failure goes on.
#   transcode-queue.sh INPUT_DIR OUTPUT_DIR
set -euo pipefail
# shellcheck source=lib-media.sh
source "$(dirname -- "$(readlink -f -- "$0")")/lib-media.sh"

input_dir=${1:?usage: transcode-queue.sh INPUT_DIR OUTPUT_DIR}
output_dir=${2:?usage: transcode-queue.sh INPUT_DIR OUTPUT_DIR}
codec=libx264
if [[ ${MP_CODEC:-x264} == x265 ]]; then codec=libx265; fi
mkdir -p -- "$output_dir"

for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "nothing to transcode in $input_dir" >&2; exit 1; }
  target="$output_dir/$(basename -- "$file")"
  made_already "$target" && continue
  part=$(part_of "$target")
  rm -f -- "$part"  # a killed run's (rm removes a link, never what it points to)
  if command -v ffmpeg >/dev/null 2>&1; then
    echo "transcoding $(basename -- "$file") with $codec, CRF ${MP_CRF:-22}"
    ffmpeg -nostdin -v error -n -format_whitelist "$MEDIA_DEMUXERS" -i "$file" \
      -map 0 -c:v "$codec" -crf "${MP_CRF:-22}" \
      -preset "${MP_PRESET:-veryfast}" -c:a copy -c:s copy -f matroska -- "$part"
  else
    echo "no ffmpeg: copying $(basename -- "$file") unchanged (not a transcode)"
    cp -- "$file" "$part"
  fi
  finish "$part" "$target"
done

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$output_dir/.pipeline/transcode.done" "$output_dir/.pipeline/transcode.timestamp"
mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/transcode.done"
date -Iseconds > "$output_dir/.pipeline/transcode.timestamp"
