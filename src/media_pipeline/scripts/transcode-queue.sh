#!/usr/bin/env bash
# Transcode every MKV in INPUT_DIR into OUTPUT_DIR: x264 (or x265 with MP_CODEC=x265) at
# CRF $MP_CRF (default 22), audio and subtitles copied.
#   transcode-queue.sh INPUT_DIR OUTPUT_DIR
set -euo pipefail

input_dir=${1:?usage: transcode-queue.sh INPUT_DIR OUTPUT_DIR}
output_dir=${2:?usage: transcode-queue.sh INPUT_DIR OUTPUT_DIR}
codec=libx264
if [[ ${MP_CODEC:-x264} == x265 ]]; then codec=libx265; fi
mkdir -p -- "$output_dir"

for file in "$input_dir"/*.mkv; do
  [[ -e $file ]] || { echo "nothing to transcode in $input_dir" >&2; exit 1; }
  target="$output_dir/$(basename -- "$file")"
  if command -v ffmpeg >/dev/null 2>&1; then
    echo "transcoding $(basename -- "$file") with $codec, CRF ${MP_CRF:-22}"
    ffmpeg -nostdin -v error -n -format_whitelist "${MEDIA_DEMUXERS:-matroska}" -i "$file" \
      -map 0 -c:v "$codec" -crf "${MP_CRF:-22}" \
      -preset "${MP_PRESET:-veryfast}" -c:a copy -c:s copy -- "$target"
  else
    echo "no ffmpeg: copying $(basename -- "$file") unchanged (not a transcode)"
    cp -n -- "$file" "$target"
  fi
done

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$output_dir/.pipeline/transcode.done" "$output_dir/.pipeline/transcode.timestamp"
mkdir -p -- "$output_dir/.pipeline"
touch -- "$output_dir/.pipeline/transcode.done"
date -Iseconds > "$output_dir/.pipeline/transcode.timestamp"
