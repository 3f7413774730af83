#!/usr/bin/env python3
"""Points production at a release: the image digest of the prod overlay and the prod Argo CD
Application's targetRevision, in one edit, so the two always name the same release.

    python3 tools/release.py --tag v0.1.1 --digest sha256:<64 hex>     (make release TAG=... DIGEST=...)

Then commit both files, tag that commit with the same TAG and push the tag: Argo CD deploys the
release when the Application (re-applied, or read by an app of apps) names it. The digest is the
one the registry answered when the release image was pushed (`docker buildx build --push` prints
it; `crane digest <image>:<tag>` or `skopeo inspect` read it later). Standard library only; the
files are edited in place, line by line, so their comments stay.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OVERLAY = os.path.join(ROOT, "deployment", "overlays", "prod", "kustomization.yaml")
APPLICATION = os.path.join(ROOT, "deployment", "argocd", "messages-service-prod.yaml")
TAG = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def replaced_one(path, pattern, replacement):
    """The file's text with the one line matching `pattern` replaced; exits if not exactly one."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    updated, count = re.subn(pattern, replacement, text, flags=re.M)
    if count != 1:
        sys.exit("%s: expected one line matching %s, found %d" % (os.path.relpath(path, ROOT), pattern, count))
    return updated


def write_all(texts):
    """Writes every file through a temporary file renamed over it, once all were written: an
    error leaves every file as it was, never one edited and the other not."""
    for path, text in texts.items():
        with open(path + ".release-tmp", "w", encoding="utf-8") as f:
            f.write(text)
    for path in texts:
        os.replace(path + ".release-tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", required=True, help="the release tag, like v0.1.1")
    parser.add_argument("--digest", required=True, help="the image digest, sha256:<64 lower-case hex>")
    args = parser.parse_args()
    if not TAG.match(args.tag):
        sys.exit("--tag must look like v1.2.3 (got %r)" % args.tag)
    if not DIGEST.match(args.digest) or args.digest == "sha256:" + "0" * 64:
        sys.exit("--digest must be sha256: and 64 lower-case hex digits of a real image (got %r)" % args.digest)
    write_all({
        OVERLAY: replaced_one(OVERLAY, r"^(\s+digest: )sha256:[0-9a-f]{64}$", r"\g<1>" + args.digest),
        APPLICATION: replaced_one(APPLICATION, r"^(\s+targetRevision: ).*$", r"\g<1>" + args.tag),
    })
    print("prod now runs %s at %s: commit, tag the commit %s, push the tag" % (args.digest, args.tag, args.tag))


if __name__ == "__main__":
    main()
