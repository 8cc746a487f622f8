#!/usr/bin/env bash
# File a transcoded item into the library at DESTINATION: for a movie (MP_ITEM_TYPE=movie)
# a file path, for a TV disc its season's folder.
#
# mp says where each file goes: MP_FILES holds one "FILE<TAB>PLACE" line per file to
# file, PLACE being below the item's folder in the library (the movie's folder, or the
# show's above DESTINATION): "Demo Show (2021) - s01e04.mkv" under "Season 01/",
# "Featurettes/Making of.mkv". Files it does not list were left out at review and stay
# in staging. Run by hand without MP_FILES, a movie's <title>.mkv goes to DESTINATION and
# its other files to Other/ beside it; a TV disc's files go into DESTINATION under their
# own names, or as "<show folder> - sSSeEE.mkv" numbered from MP_FIRST_EPISODE.
#
# With FileBot installed, FileBot copies each file (plain file mode, the name fixed by
# mp: nothing of a title is ever read as a FileBot format expression). Never overwrites
# a file in the library nor writes, removes or renames through a link there, and removes
# a staged file only after its copy is verified; run again after a failure, it goes on
# where it stopped.
#   filebot-process.sh INPUT_DIR DESTINATION
set -euo pipefail

input_dir=${1:?usage: filebot-process.sh INPUT_DIR DESTINATION}
destination=${2:-${MP_DESTINATION:?no destination given}}
# Run by mp (MP_INPUT_OPENED), this starts in the item's folder as the worker opened it
# after its checks; everything of the item is then reached from here, so a folder above
# it swapped for a link on the share while this runs leads nowhere else. Its name must
# still lead here now.
if [[ -n ${MP_INPUT_OPENED:-} ]]; then
  [[ . -ef $input_dir ]] || { echo "$input_dir is no longer the folder mp checked: nothing filed" >&2; exit 1; }
  input_dir=.
fi
title=${MP_ITEM_TITLE:?no item title given}
kind=${MP_ITEM_TYPE:-movie}
scratch="$input_dir/.pipeline/filing"
link=""
# The staged files filed so far ("path<TAB>device:inode"), removed only once every file
# is filed: a run that fails half way leaves staging whole, and the next run finds each
# file there to compare with what it filed before.
staged=()

for folder in "$input_dir/.pipeline" "$scratch"; do
  [[ ! -L $folder ]] || { echo "$folder is a link: not filing through it" >&2; exit 1; }
done
mkdir -p -- "$scratch"
# Its own folder, 0700: no other user puts a link or a mark in it (one made in advance
# by someone else is refused).
[[ -O $scratch ]] || { echo "$scratch is not this user's: not filing through it" >&2; exit 1; }
chmod 700 -- "$scratch"
# FileBot's links left by a run that was killed: this script's own names.
rm -f -- "$scratch"/.mp-part.*
# The link FileBot was given goes whatever happens; a stop (TERM) runs this too.
trap '[[ -z $link ]] || rm -f -- "$link"' EXIT
trap 'exit 143' TERM INT

# part_of TARGET: a temporary name beside TARGET that no library file has: hidden, a
# hash of TARGET, and the extension of TARGET's own name (FileBot keeps that). Only its
# own name's: after the last dot of the whole path there may be a '/' (a folder 'x.b'
# once gave '.mp-part.<hash>.b/authorized_keys', a name below a link planted there).
part_of() {
  local hash name=${1##*/} extension=""
  [[ $name != *.* ]] || extension=".${name##*.}"
  hash=$(printf '%s' "$1" | sha256sum | cut -c1-16)
  printf '%s/.mp-part.%s%s' "$(dirname -- "$1")" "$hash" "$extension"
}

# no_link PATH WHY: stop when PATH is a link, which a share writer plants in the library
# to have a file written, removed or renamed outside it.
no_link() {
  if [[ -L $1 ]]; then
    echo "$1 is a link: $2" >&2
    exit 1
  fi
}

# open_source FILE: open FILE as fd $source_fd, and refuse it unless that name is a
# plain file of its own (no link, no second name) and the file opened is that file:
# what is copied is what was checked, even if the name is swapped for a link meanwhile.
open_source() {
  local named
  # Not opened unless a plain file now (a FIFO would block the open).
  [[ -f $1 && ! -L $1 ]] || { echo "$1 is not a plain file: not filed" >&2; exit 1; }
  exec {source_fd}<"$1"
  named=$(stat -c '%F:%h:%d:%i' -- "$1")
  opened=$(stat -L -c '%d:%i' "/dev/fd/$source_fd")
  if [[ $named != "regular file:1:$opened" && $named != "regular empty file:1:$opened" ]]; then
    echo "$1 is not a plain file of its own (a link, or another name of a file): not filed" >&2
    exit 1
  fi
}

# copy_to PART: copy the open source to PART. FileBot gets a hard link of it named as
# PART (so its format is only "{fn}", the link's own name) and copies it into PART's
# folder.
copy_to() {
  local part=$1
  if command -v filebot >/dev/null 2>&1 && [[ -z ${MP_NO_FILEBOT:-} ]]; then
    link="$scratch/$(basename -- "$part")"
    ln -L -- "/dev/fd/$source_fd" "$link"
    filebot -rename "$link" --db file --format '{fn}' --action copy --conflict fail \
      -unixfs -no-xattr --output "$(dirname -- "$part")"
    rm -f -- "$link"
    link=""
  else
    # Whatever is at PART goes and the copy is made anew (O_EXCL): never written
    # through a link put there after the check.
    cp --remove-destination -- "/dev/fd/$source_fd" "$part"
  fi
}

# file_one SOURCE TARGET: copy, verify, then remove the staged file. A target already
# there with the same bytes is this file filed by an earlier run that stopped.
file_one() {
  local file=$1 target=$2 part folder
  folder=$(dirname -- "$target")
  # A folder in the library that is a link (Featurettes -> /etc) is not filed through.
  no_link "$folder" "not filing through it"
  no_link "$target" "refusing to file onto it"
  open_source "$file"
  if [[ -e $target ]]; then
    if cmp -s -- "/dev/fd/$source_fd" "$target"; then
      echo "already filed: $target"
      done_with "$file" "$target"
      return
    fi
    echo "refusing to overwrite $target" >&2
    exit 1
  fi
  mkdir -p -- "$folder"
  no_link "$folder" "not filing through it"  # mkdir -p takes a link made meanwhile
  part=$(part_of "$target")
  # The temporary name is this script's own: a link there is someone else's.
  no_link "$part" "not copying through it"
  rm -f -- "$part"  # a copy this script began and did not finish
  copy_to "$part"
  if ! cmp -s -- "/dev/fd/$source_fd" "$part"; then
    rm -f -- "$part"  # not the file it was to be a copy of: nothing of it stays
    echo "copy of $file does not match" >&2
    exit 1
  fi
  no_link "$part" "not filing it"
  # -T: TARGET is the file's name, never a folder to move it into (a link to one put
  # there meanwhile). mv -n does nothing, and may say nothing, when something took the
  # name meanwhile.
  mv -T -n -- "$part" "$target"
  if [[ -L $target ]] || ! cmp -s -- "/dev/fd/$source_fd" "$target"; then
    echo "$target is not the copy of $file" >&2
    exit 1
  fi
  echo "filed $(basename -- "$file") -> $target"
  done_with "$file" "$target"
}

# filed_mark TARGET: the name of the empty file that says this item filed TARGET (made
# with O_EXCL in the 0700 scratch folder, so never written through a link).
filed_mark() {
  printf '%s/.filed.%s' "$scratch" "$(printf '%s' "$1" | sha256sum | cut -c1-32)"
}

# done_with SOURCE TARGET: SOURCE is filed; its staged name goes at the end.
done_with() {
  (set -C; : > "$(filed_mark "$2")") 2>/dev/null || true
  staged+=("$1"$'\t'"$opened")
  exec {source_fd}<&-
}

# remove_staged: every file filed, remove each staged name that is still the file that
# was copied.
remove_staged() {
  local entry path
  for entry in "${staged[@]}"; do
    path=${entry%$'\t'*}
    if [[ $(stat -c '%d:%i' -- "$path" 2>/dev/null) == "${entry##*$'\t'}" ]]; then
      rm -- "$path"
    fi
  done
}

if [[ -n ${MP_FILES+set} ]]; then
  if [[ $kind == tv ]]; then base=$(dirname -- "${destination%/}"); else base=$(dirname -- "$destination"); fi
  [[ -n $MP_FILES ]] || { echo "MP_FILES lists nothing to file" >&2; exit 1; }
  # Every place first: a name taken by another file stops the job before it files any
  # (not half a disc filed, then a refusal).
  while IFS=$'\t' read -r name place; do
    [[ -n $name && -e $base/$place && -e $input_dir/$name ]] || continue
    if ! cmp -s -- "$input_dir/$name" "$base/$place"; then
      echo "refusing to overwrite $base/$place (nothing filed)" >&2
      exit 1
    fi
  done <<< "$MP_FILES"
  while IFS=$'\t' read -r name place; do
    [[ -n $name ]] || continue
    if [[ ! -e $input_dir/$name && ! -L $input_dir/$name ]]; then
      # Staged files go only once all are filed: one gone with its place filled by this
      # item (its mark made) is a run that stopped while removing them.
      mark=$(filed_mark "$base/$place")
      if [[ -e $base/$place && -f $mark && ! -L $mark && -O $mark ]]; then
        echo "already filed: $base/$place"
        continue
      fi
      echo "no $name in $input_dir to file" >&2
      exit 1
    fi
    file_one "$input_dir/$name" "$base/$place"
  done <<< "$MP_FILES"
elif [[ $kind == tv ]]; then
  folder=${destination%/}/
  # Named for the show folder the person approved (a year added at the gate, say).
  show=$(basename -- "$(dirname -- "$folder")")
  files=("$input_dir"/*.mkv)
  [[ -e ${files[0]} ]] || { echo "nothing to file in $input_dir" >&2; exit 1; }
  position=0
  for file in "${files[@]}"; do
    position=$((position + 1))
    target="$folder$(basename -- "$file")"
    if [[ -n ${MP_FIRST_EPISODE:-} ]]; then
      # The disc's own episode number, from the remux's "Episode NN" name: the same on a
      # run after a failure, when the files filed before are no longer here.
      number=$position
      if [[ $(basename -- "$file") =~ Episode\ ([0-9]+)\.mkv$ ]]; then
        number=$((10#${BASH_REMATCH[1]}))
      fi
      printf -v name '%s - s%02de%02d.mkv' "$show" "$((10#${MP_SEASON:-1}))" \
        "$((10#$MP_FIRST_EPISODE + number - 1))"
      target="$folder$name"
    fi
    file_one "$file" "$target"
  done
else
  [[ $destination != */ ]] || { echo "a movie's destination is a file: $destination" >&2; exit 1; }
  files=("$input_dir"/*.mkv)
  [[ -e ${files[0]} ]] || { echo "nothing to file in $input_dir" >&2; exit 1; }
  # The movie is <title>.mkv, or the one file there is; with the movie filed by a run
  # that stopped, what is left are its extras.
  main="$input_dir/$title.mkv"
  if [[ ! -e $main ]]; then
    if (( ${#files[@]} == 1 )) && [[ $(basename -- "${files[0]}") != Extra\ * ]]; then
      main=${files[0]}
    elif [[ ! -e $destination ]]; then
      echo "several files and none is '$title.mkv': which is the movie? nothing filed" >&2
      exit 1
    fi
  fi
  for file in "${files[@]}"; do
    if [[ $file == "$main" ]]; then
      file_one "$file" "$destination"
    else
      file_one "$file" "$(dirname -- "$destination")/Other/$(basename -- "$file")"
    fi
  done
fi

remove_staged

# Marker names made anew: never written through a link put there while this ran.
rm -f -- "$input_dir/.pipeline/filebot.done" "$input_dir/.pipeline/filebot.timestamp"
mkdir -p -- "$input_dir/.pipeline"
touch -- "$input_dir/.pipeline/filebot.done"
date -Iseconds > "$input_dir/.pipeline/filebot.timestamp"
