#!/usr/bin/env bash
# make image: build Scoville's OCI image with buildah (no daemon, nothing pulled):
# FROM scratch, the static binary, the build machine's CA bundle, a non-root user
# (deploy/image/Containerfile). The image lands in buildah's local storage; push it
# with `buildah push "$IMAGE" docker://REGISTRY/scoville:TAG`.
#
#   IMAGE           name of the image (default localhost/scoville:latest)
#   GO              the go command (default go)
#   SOURCE_DATE_EPOCH  the image's creation time and every file's time (default:
#                   the commit's time in a clean checkout, so that a commit always
#                   gives the same image on the same machine; now, when the tree has
#                   changes)
#   CONTAINERS_STORAGE_CONF  a storage.conf for buildah (default: buildah's, overlay
#                   in /var/lib/containers/storage); e.g. driver = "vfs" with a
#                   graphroot of its own where overlay cannot be mounted
#
# buildah comes from Debian's package: when it is missing, the script installs it
# (as root, with apt-get) or stops with the command to run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source-path=SCRIPTDIR/.. source=scripts/lib.sh
source scripts/lib.sh

image="${IMAGE:-localhost/scoville:latest}"
go_cmd="${GO:-go}"
scoville_require buildah ca-certificates

revision="" epoch="${SOURCE_DATE_EPOCH:-}"
if git rev-parse --git-dir >/dev/null 2>&1; then
	revision="$(git rev-parse HEAD)"
	if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
		revision="$revision-dirty"
		epoch="${epoch:-$(date +%s)}"
	fi
	epoch="${epoch:-$(git log -1 --format=%ct)}"
fi
[[ -z $epoch || $epoch =~ ^[0-9]+$ ]] || scoville_die "SOURCE_DATE_EPOCH must be seconds since 1970 (got '$epoch')"

scoville_tmpdir
context="$_SCOVILLE_TMP/context"
mkdir -p "$context"

# Static (no cgo: nothing to load from a scratch image), paths trimmed; the module's
# VCS revision is stamped into the binary (go version -m) when git is there.
scoville_log "go build (CGO_ENABLED=0, -trimpath) for the image"
CGO_ENABLED=0 "$go_cmd" build -trimpath -buildvcs=auto -ldflags='-s -w' -o "$context/scoville" . ||
	scoville_die "go build failed"
cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
cp deploy/image/passwd deploy/image/group "$context/"

labels=(
	--label org.opencontainers.image.title=scoville
	--label "org.opencontainers.image.description=Scoville API server and workers"
)
[[ -z $revision ]] || labels+=(--label "org.opencontainers.image.revision=$revision")
timestamp=()
[[ -z $epoch ]] || timestamp=(--timestamp "$epoch")

scoville_log "buildah build -t $image${revision:+ (revision $revision)}"
buildah build --isolation chroot --format oci --pull=false "${timestamp[@]}" "${labels[@]}" \
	-f deploy/image/Containerfile -t "$image" "$context" >"$_SCOVILLE_TMP/buildah.log" 2>&1 || {
	scoville_show_log "$_SCOVILLE_TMP/buildah.log"
	scoville_die "buildah build failed"
}
scoville_log "built $image: $(buildah inspect --type image --format '{{.FromImageID}}' "$image" | cut -c1-12), $(du -h "$context/scoville" | cut -f1) binary"
