#!/usr/bin/env bash
# Commit the lesson manifests (the build's record of what it published, voiced and uploaded)
# and push them to the branch being built, so the next build reruns only what changed.
#
# Finds manifests at any depth under lessons/ (flat or nested), new, changed or deleted.
# Exits 0 when none changed; when the branch moved during the build, rebases once and pushes
# again; when the push still fails, exits 1 saying so: never pretends the records are saved.
#
# Environment: ESL_BUILD_REMOTE (default origin); the branch is HEAD's, else GITHUB_REF_NAME.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

say() { echo "commit-manifests: $*"; }
fail() { echo "::error::commit-manifests: $*" >&2; exit 1; }

manifests=':(glob)lessons/**/*.manifest.json'  # ** also matches no folder: lessons/x.manifest.json
if [ -z "$(git ls-files --modified --others --deleted --exclude-standard -- "$manifests")" ]; then
  say "no manifest changed; nothing to commit"
  exit 0
fi

remote="${ESL_BUILD_REMOTE:-origin}"
branch="$(git symbolic-ref --short -q HEAD || echo "${GITHUB_REF_NAME:-}")"
[ -n "$branch" ] || fail "HEAD is on no branch and GITHUB_REF_NAME is unset: cannot tell where to push"

# The commit is the build's, whoever's machine runs it (GitHub's runners have no identity).
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-esl-build}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-esl-build@users.noreply.github.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}"
export GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"

git add --all -- "$manifests"
git commit --quiet -m "Update lesson manifests [skip ci]"
say "committed $(git show --name-only --format= HEAD | wc -l) manifest(s)"

if git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
  say "pushed to $remote $branch"
  exit 0
fi
# Someone pushed while we built: put our commit on top of theirs and try once more.
say "push rejected; rebasing on $remote $branch and trying again"
if git pull --quiet --rebase "$remote" "$branch" && git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
  say "pushed to $remote $branch after rebasing"
  exit 0
fi
git rebase --abort >/dev/null 2>&1 || true
fail "could not push the manifests to $remote $branch (see git's message above: branch protection? \
'permissions: contents: write'?). This build's records are NOT saved, so the next build repeats \
its work; fix the cause and re-run the workflow."
