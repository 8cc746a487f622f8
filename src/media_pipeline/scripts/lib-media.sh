#!/usr/bin/env bash
# Helpers the reference scripts share; sourced, never run.

# The containers a disc's titles come in. ffmpeg and ffprobe otherwise take a file by
# its contents, not its name: a text file named title.mkv that is an HLS playlist makes
# them read any file on this host the playlist names (and copy it onto the share).
export MEDIA_DEMUXERS=matroska,mov,mpegts,mpeg,avi

# length_unit: "ms" where ffprobe is installed, else "bytes": what length_of gives.
length_unit() {
  if command -v ffprobe >/dev/null 2>&1; then echo ms; else echo bytes; fi
}

# length_of FILE: how long a title is, to compare titles: milliseconds by ffprobe, or
# the size in bytes where ffprobe is not installed. Sizes stand for lengths only
# roughly: titles of one disc at one bitrate compare, and a "play all" that is the
# same streams as its episodes is their sizes together within its container's
# overhead; but a title of another bitrate (a bonus in lower quality) is not as long
# as its size says, so a play-all is then found only where the sizes add up too.
length_of() {
  if command -v ffprobe >/dev/null 2>&1; then
    ffprobe -v error -format_whitelist "$MEDIA_DEMUXERS" -show_entries format=duration \
      -of default=nw=1:nk=1 -- "$1" 2>/dev/null |
      awk '{ printf "%d\n", $1 * 1000 } END { if (NR == 0) print 0 }'
  else
    stat -c %s -- "$1"
  fi
}

# streams_of FILE a|s: one "index,default,forced,language" line per audio or subtitle
# stream of FILE.
streams_of() {
  ffprobe -v error -format_whitelist "$MEDIA_DEMUXERS" -select_streams "$2" \
    -show_entries stream=index:stream_disposition=default,forced:stream_tags=language \
    -of csv=p=0 -- "$1" 2>/dev/null
}

# language_of CODE: the ISO 639-2 code of a language as one word, lower case. Twenty
# languages have two codes, bibliographic (fre) and terminological (fra), and discs and
# people use both: each B code is read as its T twin.
language_of() {
  local code=${1,,}
  case $code in
    alb) code=sqi ;; arm) code=hye ;; baq) code=eus ;; bur) code=mya ;; chi) code=zho ;;
    cze) code=ces ;; dut) code=nld ;; fre) code=fra ;; geo) code=kat ;; ger) code=deu ;;
    gre) code=ell ;; ice) code=isl ;; mac) code=mkd ;; mao) code=mri ;; may) code=msa ;;
    per) code=fas ;; rum) code=ron ;; slo) code=slk ;; tib) code=bod ;; wel) code=cym ;;
  esac
  printf '%s\n' "$code"
}

# part_of TARGET: the temporary name TARGET is made under, a dot name in its folder (mp,
# the scripts' globs and Plex pass dot names by). A file at TARGET is always complete:
# a failed or killed run leaves only its part, which the next attempt replaces.
part_of() {
  printf '%s/.mp-part.%s\n' "$(dirname -- "$1")" "$(basename -- "$1")"
}

# made_already TARGET: true, and says so, when an earlier run finished TARGET; it is
# kept, never made again over (a retry goes on from where the failure stopped).
made_already() {
  [[ -e $1 || -L $1 ]] || return 1
  echo "already made by an earlier run, kept: $(basename -- "$1")"
}

# finish PART TARGET: give the complete PART its final name, never over a file there.
finish() {
  mv -T -n -- "$1" "$2" || true
  if [[ -e $1 || -L $1 ]]; then
    echo "$2 appeared while it was being made; its copy is left as $1" >&2
    return 1
  fi
}

# disposition DEFAULT FORCED: ffmpeg's -disposition value for a stream with those flags.
disposition() {
  local -a set=()
  [[ $1 == 1 ]] && set+=(default)
  [[ $2 == 1 ]] && set+=(forced)
  local IFS=+
  printf '%s\n' "${set[*]:-0}"
}

# remux IN OUT: main video, the wanted audio and subtitle languages, stream copy into MKV.
# Languages: MP_AUDIO_LANGS and MP_SUB_LANGS, space separated, in order of preference
# (default: eng); fre and fra, ger and deu... are one language. Audio is never lost: the
# original track (flagged default, else the first) is always kept too, after the wanted
# ones (a French film's own French, beside an English commentary). Forced subtitles (the
# lines of a foreign language in the film) are always kept, with their flag. A title
# with no video (an audio extra) stays without it.
remux() {
  local input=$1 output=$2 lang index default forced language original default_index track
  local number flag audio_default=0 part
  local -a maps=(-map '0:v:0?') audio=() subs=() tracks=() flags=()
  local -A flags_of=()
  made_already "$output" && return
  part=$(part_of "$output")
  rm -f -- "$part"  # a killed run's (rm removes a link, never what it points to)
  if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "no ffmpeg: copying $input unchanged (not a remux)"
    cp -- "$input" "$part"
    finish "$part" "$output"
    return
  fi
  mapfile -t tracks < <(streams_of "$input" a)
  for track in "${tracks[@]}"; do
    IFS=, read -r index default forced language <<< "$track"
    flags_of[$index]=$(disposition "$default" "$forced")
  done
  for lang in ${MP_AUDIO_LANGS:-eng}; do
    lang=$(language_of "$lang")
    for track in "${tracks[@]}"; do
      IFS=, read -r index default forced language <<< "$track"
      [[ $(language_of "$language") == "$lang" ]] && audio+=("$index")
    done
  done
  if (( ${#tracks[@]} > 0 )); then
    original=${tracks[0]%%,*}
    for track in "${tracks[@]}"; do
      IFS=, read -r default_index default forced language <<< "$track"
      if [[ $default == 1 ]]; then original=$default_index; break; fi
    done
    if [[ " ${audio[*]} " != *" $original "* ]]; then
      if (( ${#audio[@]} == 0 )); then
        echo "audio: no track in ${MP_AUDIO_LANGS:-eng}; kept the original (stream $original)"
      else
        echo "audio: kept the original (stream $original) beside ${MP_AUDIO_LANGS:-eng}"
      fi
      audio+=("$original")
    fi
  fi
  mapfile -t tracks < <(streams_of "$input" s)
  for track in "${tracks[@]}"; do
    IFS=, read -r index default forced language <<< "$track"
    flags_of[$index]=$(disposition "$default" "$forced")
    language=$(language_of "$language")
    for lang in ${MP_SUB_LANGS:-eng}; do
      [[ $(language_of "$lang") == "$language" ]] && { subs+=("$index"); continue 2; }
    done
    [[ $forced == 1 ]] && subs+=("$index")
  done
  for index in "${audio[@]}" "${subs[@]}"; do maps+=(-map "0:$index"); done
  # Every kept stream's flags as they were on the disc, written out: told nothing, ffmpeg
  # flags the first of two or more subtitles default when none was, and a player then
  # shows them all through the film. Audio alone gets a default if none kept had one.
  for index in "${audio[@]}"; do
    [[ ${flags_of[$index]} == *default* ]] && audio_default=1
  done
  for number in "${!audio[@]}"; do
    flag=${flags_of[${audio[number]}]}
    if (( number == 0 && ! audio_default )); then
      if [[ $flag == 0 ]]; then flag=default; else flag=default+$flag; fi
    fi
    flags+=("-disposition:a:$number" "$flag")
  done
  for number in "${!subs[@]}"; do
    flags+=("-disposition:s:$number" "${flags_of[${subs[number]}]}")
  done
  echo "kept: audio streams ${audio[*]:-none}, subtitle streams ${subs[*]:-none}"
  ffmpeg -nostdin -v error -n -format_whitelist "$MEDIA_DEMUXERS" -i "$input" "${maps[@]}" \
    -c copy "${flags[@]}" -f matroska -- "$part"
  finish "$part" "$output"
}
