#!/usr/bin/env bash
# Helpers the reference scripts share; sourced, never run.

# The containers a disc's titles come in. ffmpeg and ffprobe otherwise take a file by
# its contents, not its name: a text file named title.mkv that is an HLS playlist makes
# them read any file on this host the playlist names (and copy it onto the share).
export MEDIA_DEMUXERS=matroska,mov,mpegts,mpeg,avi

# length_of FILE: how long a title is, to compare titles: milliseconds by ffprobe, or
# the size in bytes where ffprobe is not installed.
length_of() {
  if command -v ffprobe >/dev/null 2>&1; then
    ffprobe -v error -format_whitelist "$MEDIA_DEMUXERS" -show_entries format=duration \
      -of default=nw=1:nk=1 -- "$1" 2>/dev/null |
      awk '{ printf "%d\n", $1 * 1000 } END { if (NR == 0) print 0 }'
  else
    stat -c %s -- "$1"
  fi
}

# remux IN OUT: main video, the wanted audio and subtitle languages, stream copy into MKV.
# Languages: MP_AUDIO_LANGS and MP_SUB_LANGS, space separated (default: eng).
remux() {
  local input=$1 output=$2 lang
  local -a maps=(-map 0:v:0)
  for lang in ${MP_AUDIO_LANGS:-eng}; do maps+=(-map "0:a:m:language:$lang?"); done
  for lang in ${MP_SUB_LANGS:-eng}; do maps+=(-map "0:s:m:language:$lang?"); done
  if command -v ffmpeg >/dev/null 2>&1; then
    ffmpeg -nostdin -v error -n -format_whitelist "$MEDIA_DEMUXERS" -i "$input" "${maps[@]}" \
      -c copy -- "$output"
  else
    echo "no ffmpeg: copying $input unchanged (not a remux)"
    cp -n -- "$input" "$output"
  fi
}
