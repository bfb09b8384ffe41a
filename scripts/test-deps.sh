#!/usr/bin/env bash
# Installs what `make test` needs and this machine lacks, saying what it
# installs: Debian packages with apt-get (through sudo when not root),
# npm packages with `npm ci` from each committed lockfile. Does nothing
# when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, as "command-or-path:package".
need=(
	"kcat:kcat"
	"chromium:chromium"
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"
	"node:nodejs"
	"npm:npm"
)

missing=()
for n in "${need[@]}"; do
	probe=${n%%:*} pkg=${n#*:}
	if [[ $probe == /* ]]; then
		[[ -e $probe ]] && continue
	else
		command -v "$probe" >/dev/null 2>&1 && continue
	fi
	missing+=("$pkg")
done
if ((${#missing[@]})); then
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
	echo "test-deps: installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm projects: each folder with a package-lock.json, installed when its
# node_modules is missing or older than the lockfile.
for lock in $(git ls-files '*package-lock.json'); do
	dir=$(dirname "$lock")
	if [[ ! -d $dir/node_modules || $lock -nt $dir/node_modules ]]; then
		echo "test-deps: npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
		touch "$dir/node_modules"
	fi
done
