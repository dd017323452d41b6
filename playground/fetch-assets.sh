#!/usr/bin/env bash
# Fetches the Playground's third-party assets from the npm registry, minifies the
# GraphiQL bundle (its published graphiql.min.js is webpack's development build,
# unminified) and writes them, with every bundled package's license, to
# playground/assets/vendor/. Run it through `make playground-assets` after changing
# a version below, then commit the result; the server embeds these files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

GRAPHIQL_VERSION=3.8.3 # the last major with a UMD build (v4 ships ES modules only)
REACT_VERSION=18.3.1   # the last major with UMD builds (React 19 dropped them)
GRAPHQL_VERSION=16.9.0 # only for the license file: graphiql's UMD bundle embeds graphql-js
ESBUILD_VERSION=0.25.12

command -v npm >/dev/null || { echo "error: npm is required (Debian: apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out=assets/vendor

(
	cd "$work"
	npm init -y >/dev/null
	# Packages the GraphiQL bundle embeds without depending on them are installed
	# too, only so that their license files can be copied.
	npm install --no-audit --no-fund --loglevel=error \
		"esbuild@$ESBUILD_VERSION" "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" \
		"react-dom@$REACT_VERSION" "graphql@$GRAPHQL_VERSION" \
		@babel/runtime@8.1.2 graphql-ws@6.4.2 isarray@2.0.5 @radix-ui/react-use-escape-keydown@1.1.6
)
nm="$work/node_modules"
esbuild="$nm/.bin/esbuild"

mkdir -p "$out"
"$esbuild" "$nm/graphiql/graphiql.min.js" --minify --legal-comments=none --target=es2020 \
	--log-level=error --outfile="$out/graphiql.min.js"
"$esbuild" "$nm/graphiql/graphiql.min.css" --minify --legal-comments=none \
	--log-level=error --outfile="$out/graphiql.min.css"
cp "$nm/react/umd/react.production.min.js" "$out/react.production.min.js"
cp "$nm/react-dom/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"

# Every package the GraphiQL bundle embeds (webpack keeps their paths), plus React.
{
	grep -o 'node_modules/\(@[^/]*/\)\?[^/]*/' "$nm/graphiql/graphiql.min.js" |
		sed 's,^node_modules/,,; s,/$,,'
	printf '%s\n' graphiql react react-dom
} | sort -u >"$work/packages"

{
	echo "Third-party software in the Scoville Playground (playground/assets/vendor)."
	echo "Fetched from the npm registry by playground/fetch-assets.sh."
	while read -r pkg; do
		dir="$nm/$pkg"
		version="$(node -p "require('$dir/package.json').version")"
		license="$(node -p "(p => p.license || (p.licenses || []).map(l => l.type).join(' OR ') || 'UNKNOWN')(require('$dir/package.json'))")"
		echo
		echo "=============================================================================="
		echo "$pkg@$version ($license)"
		echo "=============================================================================="
		file="$(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' \) | sort | head -n 1)"
		if [[ -n $file ]]; then
			cat "$file"
		else
			echo "(the package ships no license file; its package.json declares $license)"
		fi
	done <"$work/packages"
} >"$out/THIRD_PARTY_LICENSES.txt"

cat >"$out/VERSIONS" <<VERSIONS
graphiql $GRAPHIQL_VERSION graphiql.min.js graphiql.min.css (minified by esbuild $ESBUILD_VERSION)
react $REACT_VERSION umd/react.production.min.js
react-dom $REACT_VERSION umd/react-dom.production.min.js
VERSIONS
echo "wrote $out: $(cd "$out" && ls | tr '\n' ' ')"
