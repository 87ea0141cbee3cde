#!/bin/sh
# Copy git, its helper programs and the shared libraries they load into DEST, with a launcher
# (DEST/bin/git) that points the loader and git at them. The job's image never installs git: the
# install step finds it on a mount that is not committed.
set -eu
dest="$1"
core="$(git --exec-path)"
mkdir -p "$dest/git/bin" "$dest/git/core" "$dest/git/lib" "$dest/git/templates"
cp -a "$(command -v git)" "$dest/git/bin/git"
# The helpers a requirement can need: http(s) transport and the commands pip and uv run.
for helper in git git-remote-http git-remote-https git-remote-ftp git-remote-ftps git-sh-setup \
              git-submodule git-sh-i18n git-lfs; do
    if [ -e "$core/$helper" ]; then cp -a "$core/$helper" "$dest/git/core/"; fi
done
# The commands git runs by name for a local clone (uv clones from its own cache): git itself under
# those names, found on the launcher's PATH.
for builtin in git-upload-pack git-receive-pack git-upload-archive; do
    ln -sf ../bin/git "$dest/git/core/$builtin"
done
# Every library those programs load, except the C library itself (each image has its own, and
# this one was built on the same root image).
for bin in "$dest/git/bin/git" "$dest"/git/core/*; do
    [ -f "$bin" ] && [ ! -L "$bin" ] || continue
    ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 }' | while read -r lib; do
        case "$(basename "$lib")" in
            libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
            *) cp -L -n "$lib" "$dest/git/lib/" ;;
        esac
    done
done
cat > "$dest/bin/git" <<'LAUNCHER'
#!/bin/sh
here="$(dirname "$(readlink -f "$0")")/../git"
export GIT_EXEC_PATH="$here/core"
export GIT_TEMPLATE_DIR="$here/templates"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$here/core:$PATH"
exec "$here/bin/git" "$@"
LAUNCHER
chmod 755 "$dest/bin/git"
