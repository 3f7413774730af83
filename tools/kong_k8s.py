#!/usr/bin/env python3
"""Writes gateway/kong.k8s.yml, the Kong configuration of Kubernetes, from gateway/kong.yml.

gateway/kong.yml is the file to edit: docker compose mounts it as it is. Kubernetes
reads this generated variant instead (gateway/kustomization.yaml stores it in Kong's
ConfigMap under the key kong.yml). The variant differs in three places: the
INF326-compatible service `messages-inf326`, open in compose for the old INF326 web
client, gets
  - a copy of the v1 service's jwt plugin (same settings): every call needs a valid
    token, and the service (INF326_AUTH=jwt) takes the author from its `sub`;
  - request-transformer removing X-User-Id: no identity chosen by the client
    reaches the service;
the service `messages-web` (the chat page and the API reference) is left out; and the jwt
credential is RS256 with the public key in deployment/base/jwt-public.pem instead of the
HS256 secret compose uses.
Comments are not copied: they live in gateway/kong.yml.

    python3 tools/kong_k8s.py            rewrite gateway/kong.k8s.yml
    python3 tools/kong_k8s.py --check    exit 1 when gateway/kong.k8s.yml is out of date

Needs PyYAML (the venv of `make validate`, .local/validate-venv/bin/python, has it).
`make validate` fails when the committed file is not what this script writes
(tools/test_gateway.py imports render() from here).
"""

import copy
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "gateway", "kong.yml")
TARGET = os.path.join(ROOT, "gateway", "kong.k8s.yml")
# The public key Kubernetes verifies tokens with; the service reads the same file (ConfigMap
# messages-service-jwt-public-key of deployment/base).
PUBLIC_KEY = os.path.join(ROOT, "deployment", "base", "jwt-public.pem")

V1_SERVICE = "messages-v1"
INF326_SERVICE = "messages-inf326"
# The chat page and API reference: compose only (the Kubernetes base turns WEB_CLIENT off).
WEB_SERVICE = "messages-web"
RS256_UNUSED_SECRET = "unused-with-rs256"
# What Kubernetes adds to INF326_SERVICE, besides the copy of the v1 jwt plugin.
STRIP_USER_ID = {"name": "request-transformer", "config": {"remove": {"headers": ["X-User-Id"]}}}

HEADER = """\
# GENERATED from gateway/kong.yml by tools/kong_k8s.py: do not edit by hand.
# After changing gateway/kong.yml run `python3 tools/kong_k8s.py` and commit
# both files (make validate fails while this one is out of date).
#
# Kong DB-less configuration of Kubernetes: gateway/kustomization.yaml puts it
# into Kong's ConfigMap (key kong.yml). It is gateway/kong.yml (read the
# comments there), except that the INF326-compatible service messages-inf326
# also carries the v1 service's jwt plugin and a request-transformer that
# removes X-User-Id: on Kubernetes every /messages/threads/... call needs a
# token, and the service (INF326_AUTH=jwt) takes the author from its `sub`.
# docker compose keeps that route open for the old INF326 web client. The
# service messages-web (the chat page and /docs, compose only) is left out,
# and the jwt credential is RS256 with the public key of
# deployment/base/jwt-public.pem (compose: an HS256 secret for local use).
"""


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their key, as gateway/kong.yml does (yamllint)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _block_strings(dumper, value):
    """Multi-line strings (the public key) as literal blocks, as a person would write them."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _block_strings)


def _service(config, name):
    found = [s for s in config.get("services") or [] if s.get("name") == name]
    if len(found) != 1:
        raise ValueError("gateway/kong.yml: expected one service %s, found %d" % (name, len(found)))
    return found[0]


def k8s_config(base):
    """The Kubernetes variant of the parsed gateway/kong.yml (a new object)."""
    config = copy.deepcopy(base)
    v1 = _service(config, V1_SERVICE)
    inf326 = _service(config, INF326_SERVICE)
    jwt = [p for p in v1.get("plugins") or [] if p.get("name") == "jwt"]
    if len(jwt) != 1:
        raise ValueError("gateway/kong.yml: service %s must have one jwt plugin, has %d" % (V1_SERVICE, len(jwt)))
    present = {p.get("name") for p in inf326.get("plugins") or []}
    clash = present & {"jwt", STRIP_USER_ID["name"]}
    if clash:
        raise ValueError("gateway/kong.yml: service %s already has %s; this script adds them for Kubernetes"
                         % (INF326_SERVICE, ", ".join(sorted(clash))))
    inf326["plugins"] = (inf326.get("plugins") or []) + [copy.deepcopy(jwt[0]), copy.deepcopy(STRIP_USER_ID)]
    config["services"] = [s for s in config["services"] if s.get("name") != WEB_SERVICE]
    # RS256 with the public key instead of compose's shared HS256 secret: Kong's ConfigMap then
    # holds nothing secret, and only the token issuer holds the private key.
    with open(PUBLIC_KEY, encoding="utf-8") as f:
        public_key = f.read()
    for consumer in config.get("consumers") or []:
        for credential in consumer.get("jwt_secrets") or []:
            # decK's schema requires a `secret`; with RS256 Kong verifies with the public key only
            # and never reads it: a fixed marker stands there, nothing secret.
            credential["secret"] = RS256_UNUSED_SECRET
            credential["algorithm"] = "RS256"
            credential["rsa_public_key"] = public_key
    return config


def render(source_text):
    """Text of gateway/kong.k8s.yml for the text of gateway/kong.yml."""
    body = yaml.dump(k8s_config(yaml.safe_load(source_text)), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True, width=1000)
    return HEADER + body


def main(argv):
    if argv not in ([], ["--check"]):
        print(__doc__, file=sys.stderr)
        return 2
    with open(SOURCE, encoding="utf-8") as f:
        want = render(f.read())
    try:
        with open(TARGET, encoding="utf-8") as f:
            have = f.read()
    except FileNotFoundError:
        have = None
    rel = os.path.relpath(TARGET, ROOT)
    if argv == ["--check"]:
        if have != want:
            print("%s is out of date: run python3 tools/kong_k8s.py" % rel, file=sys.stderr)
            return 1
        print("%s is up to date" % rel)
        return 0
    if have == want:
        print("%s is up to date" % rel)
    else:
        with open(TARGET, "w", encoding="utf-8") as f:
            f.write(want)
        print("wrote %s" % rel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
