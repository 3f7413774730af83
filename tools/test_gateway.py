#!/usr/bin/env python3
"""Offline checks of the deployment files that no schema validator covers.

  gateway/kong.yml         routes reach what the service serves (read from its
                           OpenAPI spec when it has paths), internal endpoints
                           and the Admin API are not routed, plugin settings
  gateway/kong.k8s.yml     the Kubernetes variant: what tools/kong_k8s.py
                           writes from kong.yml, differing only on the INF326
                           service (jwt, X-User-Id removed)
  deployment/              rendered base and overlays: Deployment, probes,
                           security context, NetworkPolicy, Argo CD hooks...,
                           and no route of a rendered Kong ConfigMap that
                           accepts a write method without the jwt plugin
  docker-compose.yml       the stack, its wiring to kong.yml
  Dockerfile               the runtime contract (user, entrypoint, port)

Run by tools/validate.sh with the venv's python (needs PyYAML, and kubectl from
the venv or PATH for the Kubernetes checks):
    .local/validate-venv/bin/python tools/test_gateway.py
Prints one line per check and ends with "N passed, M failed"; exits 1 on failure.
"""

import base64
import copy
import os
import re
import shutil
import subprocess
import sys
import traceback
from urllib.parse import urlparse

import yaml

sys.dont_write_bytecode = True  # no tools/__pycache__ from the import below
import kong_k8s as kong_k8s_generator  # noqa: E402  tools/kong_k8s.py, next to this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KONG_FILE = os.path.join(ROOT, "gateway", "kong.yml")            # compose mounts it; the file to edit
KONG_K8S_FILE = os.path.join(ROOT, "gateway", "kong.k8s.yml")    # Kubernetes; generated from KONG_FILE
COMPOSE_FILE = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
OPENAPI_FILE = os.path.join(ROOT, "Sources", "MessagesService", "Resources", "openapi.yaml")
KUSTOMIZATIONS = ["deployment/base", "deployment/kong", "deployment/overlays/dev", "deployment/overlays/prod"]
OVERLAYS = ["deployment/overlays/dev", "deployment/overlays/prod"]
ARGO_APPS = {
    "dev": "deployment/argocd/messages-service-dev.yaml",
    "prod": "deployment/argocd/messages-service-prod.yaml",
}

# What the service serves, used only while its OpenAPI spec has no paths yet.
FALLBACK_PATHS = {
    "/v1/channels/{channel_id}/messages": {"GET", "POST"},
    "/v1/channels/{channel_id}/messages/{id}": {"GET", "PATCH", "DELETE"},
    "/v1/channels/{channel_id}/messages/{id}/replies": {"GET"},
    "/v1/channels/{channel_id}/messages/{id}/history": {"GET"},
    "/v1/channels/{channel_id}/messages/{id}/reactions/{emoji}": {"PUT", "DELETE"},
    "/v1/channels/{channel_id}/changes": {"GET"},
    "/v1/limits": {"GET"},
    "/threads/{thread_id}/messages": {"GET", "POST"},
    "/threads/{thread_id}/messages/{id}": {"PUT", "DELETE"},
    "/health/live": {"GET"},
    "/health/ready": {"GET"},
    "/metrics": {"GET"},
    "/openapi.yaml": {"GET"},
}
PUBLIC_PREFIXES = ("/v1/", "/threads/")          # must be reachable through Kong
INTERNAL_PATHS = ["/health/live", "/health/ready", "/health", "/metrics", "/openapi.yaml", "/docs"]  # must not
WEB_SERVICE = "messages-web"
LOCAL_ONLY = "compose-local-only-"                 # prefix of the secrets committed for compose                      # compose only: the chat page and the API reference
WEB_PATHS = ("/app", "/docs", "/openapi.yaml")
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
INF326_SERVICE = "messages-inf326"
# Token lifetime: maximum_expiration of every Kong jwt plugin = the service's JWT_MAX_TTL.
JWT_MAX_TTL = 86400

EXPECTED_CORS_HEADERS = {"Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID", "X-User-Id"}
EXPECTED_CORS_EXPOSED = {
    "ETag", "Location", "X-Request-ID", "X-Cache", "Idempotent-Replayed", "Retry-After",
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
}
EXPECTED_EGRESS = {(5432, "TCP"), (6379, "TCP"), (5672, "TCP"), (53, "UDP"), (53, "TCP")}
SERVICE_DRAIN_SECONDS = 30

# ---------------------------------------------------------------- helpers

CHECKS = []


def check(description):
    """Registers a check; the description is printed with its result."""
    def register(fn):
        CHECKS.append((description, fn))
        return fn
    return register


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


_cache = {}


def kong():
    """gateway/kong.yml (compose), parsed."""
    if "kong" not in _cache:
        _cache["kong"] = load_yaml(KONG_FILE)
    return _cache["kong"]


def kong_k8s():
    """gateway/kong.k8s.yml (Kubernetes), parsed."""
    if "kong_k8s" not in _cache:
        _cache["kong_k8s"] = load_yaml(KONG_K8S_FILE)
    return _cache["kong_k8s"]


def kong_variants():
    """(label, parsed config) of both Kong files."""
    return [("gateway/kong.yml", kong()), ("gateway/kong.k8s.yml", kong_k8s())]


def compose():
    if "compose" not in _cache:
        _cache["compose"] = load_yaml(COMPOSE_FILE)
    return _cache["compose"]


def kubectl():
    venv_kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if os.access(venv_kubectl, os.X_OK):
        return venv_kubectl
    found = shutil.which("kubectl")
    assert found, "kubectl not found (run tools/validate.sh, which installs it in the venv)"
    return found


def rendered(kustomization):
    """Objects of `kubectl kustomize <dir>` as a list of dicts."""
    key = "render:" + kustomization
    if key not in _cache:
        out = subprocess.run([kubectl(), "kustomize", os.path.join(ROOT, kustomization)],
                             capture_output=True, text=True)
        assert out.returncode == 0, "kubectl kustomize %s failed: %s" % (kustomization, out.stderr.strip())
        _cache[key] = [d for d in yaml.safe_load_all(out.stdout) if d]
    return _cache[key]


def objects(kustomization, kind, name=None):
    found = [o for o in rendered(kustomization)
             if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def one(kustomization, kind, name):
    found = objects(kustomization, kind, name)
    assert len(found) == 1, "%s: expected one %s/%s, found %d" % (kustomization, kind, name, len(found))
    return found[0]


def served_paths():
    """{path template: set of methods}, from the OpenAPI spec when it lists paths."""
    if "served" not in _cache:
        source, paths = "fallback list in tools/test_gateway.py", FALLBACK_PATHS
        if os.path.exists(OPENAPI_FILE):
            spec = load_yaml(OPENAPI_FILE) or {}
            spec_paths = spec.get("paths") or {}
            if spec_paths:
                paths = {}
                for p, item in spec_paths.items():
                    methods = {m.upper() for m in (item or {}) if m.upper() in HTTP_METHODS}
                    paths[p] = methods
                source = os.path.relpath(OPENAPI_FILE, ROOT)
        _cache["served"] = (source, paths)
    return _cache["served"][1]


def concrete(template):
    """/v1/channels/{channel_id}/messages -> /v1/channels/p-channel_id/messages"""
    return re.sub(r"\{([^}/]+)\}", r"p-\1", template)


def all_plugins(cfg=None):
    """(scope, plugin) for global, service and route plugins of kong.yml (or cfg)."""
    cfg = kong() if cfg is None else cfg
    out = [("global", p) for p in cfg.get("plugins") or []]
    for svc in cfg.get("services") or []:
        out += [("service:" + svc["name"], p) for p in svc.get("plugins") or []]
        for route in svc.get("routes") or []:
            out += [("route:" + route["name"], p) for p in route.get("plugins") or []]
    return out


def global_plugin(name):
    found = [p for p in kong().get("plugins") or [] if p["name"] == name]
    assert len(found) == 1, "expected one global %s plugin, found %d" % (name, len(found))
    return found[0]["config"]


def routes(cfg=None):
    """(service, route) pairs of kong.yml (or cfg)."""
    for svc in (kong() if cfg is None else cfg).get("services") or []:
        for route in svc.get("routes") or []:
            yield svc, route


def service_path(svc):
    if svc.get("url"):
        return urlparse(svc["url"]).path
    return svc.get("path") or ""


def join_v0(service_path_, rest):
    """Kong's path_handling v0: service path + remainder, one slash between."""
    if not service_path_:
        return rest if rest.startswith("/") else "/" + rest
    if not rest:
        return service_path_
    if service_path_.endswith("/") and rest.startswith("/"):
        return service_path_ + rest[1:]
    if not service_path_.endswith("/") and not rest.startswith("/"):
        return service_path_ + "/" + rest
    return service_path_ + rest


def upstream_path(svc, route, route_path, request_path):
    assert request_path.startswith(route_path)
    assert route.get("path_handling", "v0") == "v0", "only path_handling v0 is modelled"
    strip = route.get("strip_path", True)  # Kong's default is true
    rest = request_path[len(route_path):] if strip else request_path
    return join_v0(service_path(svc), rest)


def route_paths(route):
    paths = route.get("paths") or []
    for p in paths:
        assert not p.startswith("~"), "regex route paths are not modelled by this test: %s" % p
    return paths


def route_for(request_path, method, cfg=None):
    """What Kong's router picks: the longest matching prefix path."""
    best = None
    for svc, route in routes(cfg):
        if method not in set(route.get("methods") or HTTP_METHODS):
            continue
        for rp in route_paths(route):
            if request_path.startswith(rp) and (best is None or len(rp) > len(best[2])):
                best = (svc, route, rp)
    return best


def upstream_prefix(svc, route, rp):
    """Upstream path of the request `rp + "x"`, without the "x": every request on
    this route reaches a path starting with it."""
    return upstream_path(svc, route, rp, rp + "x")[:-1]


def kong_credential(cfg=None):
    consumers = (kong() if cfg is None else cfg).get("consumers") or []
    creds = [c for consumer in consumers for c in consumer.get("jwt_secrets") or []]
    assert len(creds) == 1, "expected one jwt credential, found %d" % len(creds)
    return creds[0]


def configmap_env(kustomization):
    cms = [o for o in objects(kustomization, "ConfigMap")
           if o["metadata"]["name"].startswith("messages-service-config")]
    assert len(cms) == 1, "%s: expected one messages-service-config ConfigMap" % kustomization
    return cms[0]["data"]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def container(obj, name=None):
    cs = pod_spec(obj)["containers"]
    if name:
        cs = [c for c in cs if c["name"] == name]
    assert len(cs) == 1
    return cs[0]


def wave(obj):
    return int((obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))


def service_plugins(cfg, name):
    found = [s for s in cfg.get("services") or [] if s["name"] == name]
    assert len(found) == 1, "expected one service %s, found %d" % (name, len(found))
    return found[0].get("plugins") or []


def jwt_plugins_for(cfg, svc, route):
    """jwt plugins on the route, its service, or global (nested declarative form)."""
    return [p for p in (svc.get("plugins") or []) + (route.get("plugins") or []) + (cfg.get("plugins") or [])
            if p["name"] == "jwt"]


def kong_configs(kustomization):
    """(ConfigMap name, key, parsed) for every ConfigMap value of a render that is a Kong
    declarative config (a mapping with _format_version, services or routes)."""
    out = []
    for cm in objects(kustomization, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and {"_format_version", "services", "routes"} & set(doc):
                out.append((cm["metadata"]["name"], key, doc))
    return out


def _ref(value):
    """A reference to another entity in a declarative file: a name or id, or {name:..}/{id:..}."""
    if isinstance(value, dict):
        return value.get("name") or value.get("id")
    return value


def _ids(entity):
    return {v for v in (entity.get("name"), entity.get("id")) if v}


def _jwt_enforces(plugin, route):
    """True when this jwt plugin rejects every request without a valid token on the route:
    enabled, not scoped to a consumer (or group), no anonymous fallback, and on all of the
    route's protocols."""
    if plugin.get("name") != "jwt" or plugin.get("enabled", True) is False:
        return False
    if plugin.get("consumer") or plugin.get("consumer_group"):
        return False
    if (plugin.get("config") or {}).get("anonymous"):
        return False
    if plugin.get("protocols"):
        route_protocols = set(route.get("protocols") or ["http", "https"])
        if not route_protocols <= set(plugin["protocols"]):
            return False
    return True


def unprotected_write_routes(cfg):
    """Routes of a Kong declarative config that accept POST, PUT, PATCH or DELETE (a route
    without `methods` accepts every method) while no enforcing jwt plugin applies to them:
    none on the route, on its service, or global. Nested and top-level (referencing)
    routes and plugins are both understood; consumer plugins never protect a route."""
    services = cfg.get("services") or []
    pairs = []
    for svc in services:
        for route in svc.get("routes") or []:
            pairs.append((route, svc))
    for route in cfg.get("routes") or []:
        ref = _ref(route.get("service"))
        svc = next((s for s in services if ref and ref in _ids(s)), None)
        pairs.append((route, svc))
    bad = []
    for route, svc in pairs:
        methods = {m.upper() for m in route.get("methods") or []}
        writes = (methods & WRITE_METHODS) if methods else {"any method"}
        if not writes:
            continue
        applying = list(route.get("plugins") or [])
        if svc is not None:
            applying += svc.get("plugins") or []
        for p in cfg.get("plugins") or []:
            r, s_ = _ref(p.get("route")), _ref(p.get("service"))
            if r and r not in _ids(route):
                continue
            if s_ and (svc is None or s_ not in _ids(svc)):
                continue
            applying.append(p)  # global when it names neither
        if not any(_jwt_enforces(p, route) for p in applying):
            bad.append("route %s (service %s, paths %s) accepts %s" % (
                route.get("name") or route.get("id"), svc and (svc.get("name") or svc.get("id")),
                ", ".join(route.get("paths") or []) or "any", ", ".join(sorted(writes))))
    return bad


# ---------------------------------------------------------------- gateway/kong.yml

@check("kong.yml: _format_version is \"3.0\" and every plugin is enabled")
def _():
    assert kong().get("_format_version") == "3.0", kong().get("_format_version")
    for scope, p in all_plugins():
        assert p.get("enabled", True) is True, "%s plugin %s is disabled" % (scope, p["name"])


@check("kong.yml: upstream is messages-service:80 (the k8s Service port and the compose PORT)")
def _():
    for svc in kong()["services"]:
        u = urlparse(svc["url"])
        assert (u.scheme, u.hostname, u.port) == ("http", "messages-service", 80), svc["url"]
    api_env = compose()["services"]["messages-service"]["environment"]
    assert str(api_env.get("PORT")) == "80", "compose messages-service must listen on 80, has PORT=%s" % api_env.get("PORT")
    for k in OVERLAYS:
        svc = one(k, "Service", "messages-service")
        assert [p["port"] for p in svc["spec"]["ports"]] == [80], svc["spec"]["ports"]


@check("kong.yml: every route path (after strip_path) reaches a path and methods the service serves")
def _():
    served = served_paths()
    served_concrete = {concrete(t): m for t, m in served.items()}
    assert list(routes()), "no routes"
    for svc, route in routes():
        methods = set(route.get("methods") or [])
        assert methods, "route %s must list its methods" % route["name"]
        for rp in route_paths(route):
            prefix = upstream_prefix(svc, route, rp)
            reached = {p: m for p, m in served_concrete.items() if p.startswith(prefix)}
            assert reached, "route %s path %s -> upstream %s... matches nothing the service serves" % (
                route["name"], rp, prefix)
            served_methods = set().union(*reached.values())
            extra = methods - {"OPTIONS"} - served_methods
            assert not extra, "route %s allows %s, not served under %s" % (route["name"], sorted(extra), prefix)


@check("kong.yml: every public path of the service (/v1/..., /threads/...) is reachable with each of its methods")
def _():
    for template, methods in served_paths().items():
        if not template.startswith(PUBLIC_PREFIXES):
            continue
        target = concrete(template)
        for method in methods:
            # Find a public path that Kong routes to `target` with this method.
            ok = False
            for svc, route in routes():
                for rp in route_paths(route):
                    prefix = upstream_prefix(svc, route, rp)
                    if not target.startswith(prefix):
                        continue
                    public = rp + target[len(prefix):]
                    picked = route_for(public, method)
                    if picked and picked[1] is route and upstream_path(svc, route, rp, public) == target:
                        ok = True
            assert ok, "%s %s is not reachable through Kong" % (method, template)


@check("kong.yml: /health and /metrics are not routed; /app, /docs and /openapi.yaml only by messages-web, GET only")
def _():
    for svc, route in routes():
        for rp in route_paths(route):
            prefix = upstream_prefix(svc, route, rp)
            for internal in INTERNAL_PATHS:
                if svc["name"] == WEB_SERVICE and internal.startswith(WEB_PATHS):
                    continue
                assert not internal.startswith(prefix), "route %s (%s) can reach %s" % (route["name"], rp, internal)
            assert not rp.startswith(("/health", "/metrics")), rp
            if svc["name"] == WEB_SERVICE:
                assert rp in WEB_PATHS, "route %s: %s is not one of %s" % (route["name"], rp, WEB_PATHS)
                assert set(route["methods"]) == {"GET", "OPTIONS"}, route["methods"]


@check("Kubernetes: no development token endpoint (DEV_TOKENS unset or false) and no chat page (WEB_CLIENT=false)")
def _():
    for k in OVERLAYS:
        env = configmap_env(k)
        assert str(env.get("DEV_TOKENS", "false")).lower() in ("false", "0", "no", "off"), "%s sets DEV_TOKENS" % k
        assert str(env.get("WEB_CLIENT")).lower() == "false", "%s: WEB_CLIENT=%s" % (k, env.get("WEB_CLIENT"))
        for obj in objects(k, "Deployment"):
            for c in pod_spec(obj).get("containers") or []:
                names = {e.get("name") for e in c.get("env") or []}
                assert "DEV_TOKENS" not in names, "%s: container %s sets DEV_TOKENS" % (k, c.get("name"))


# Postgres connections of one pod besides its pool: the relay's session (advisory lock), the
# membership listener (CHANNEL_ACCESS=members) and the outage probe (while Postgres is down).
POD_EXTRA_CONNECTIONS = 3
SUPERUSER_RESERVED = 3  # Postgres' superuser_reserved_connections default
BUDGET_ANNOTATION = "messages-service/postgres-max-connections"


@check("Kubernetes connection budget: (HPA max + rollout surge) x (PG_POOL_SIZE + 3) + the migration Job's pool + 3 reserved <= the overlay's declared max_connections")
def _():
    for k in OVERLAYS:
        hpa = one(k, "HorizontalPodAutoscaler", "messages-service")
        declared = (hpa["metadata"].get("annotations") or {}).get(BUDGET_ANNOTATION)
        assert declared, "%s: the HPA must declare %s" % (k, BUDGET_ANNOTATION)
        pool = int(configmap_env(k).get("PG_POOL_SIZE", "8"))
        # A rollout at the maximum runs maxSurge more pods (and the old ones keep their
        # connections while they drain).
        surge = str(one(k, "Deployment", "messages-service")["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
        extra = -(-hpa["spec"]["maxReplicas"] * int(surge[:-1]) // 100) if surge.endswith("%") else int(surge)
        pods = hpa["spec"]["maxReplicas"] + extra
        needed = pods * (pool + POD_EXTRA_CONNECTIONS) + pool + SUPERUSER_RESERVED
        assert needed <= int(declared), "%s: %d pods x (%d + %d) + %d + %d = %d connections > max_connections %s" % (
            k, pods, pool, POD_EXTRA_CONNECTIONS, pool, SUPERUSER_RESERVED, needed, declared)


@check("kong.k8s.yml: /health, /metrics, /openapi.yaml, /docs and /app are not routed (WEB_CLIENT is off there)")
def _():
    cfg = kong_k8s()
    assert WEB_SERVICE not in [svc["name"] for svc in cfg["services"]]
    for svc, route in routes(cfg):
        for rp in route_paths(route):
            prefix = upstream_prefix(svc, route, rp)
            for internal in INTERNAL_PATHS + ["/app/"]:
                assert not internal.startswith(prefix), "route %s (%s) can reach %s" % (route["name"], rp, internal)


@check("kong.yml: every route accepts OPTIONS (CORS preflight)")
def _():
    for _svc, route in routes():
        assert "OPTIONS" in (route.get("methods") or []), route["name"]


@check("kong.yml: v1 routes keep their path, INF326 clients' /messages/threads/... reaches /threads/...")
def _():
    for svc, route in routes():
        for rp in route_paths(route):
            if rp.startswith("/v1/"):
                assert route.get("strip_path") is False, route["name"]
                assert upstream_path(svc, route, rp, rp + "a") == rp + "a"
    picked = route_for("/messages/threads/t1/messages", "POST")
    assert picked, "no route for /messages/threads/t1/messages"
    svc, route, rp = picked
    assert upstream_path(svc, route, rp, "/messages/threads/t1/messages/m1") == "/threads/t1/messages/m1"
    assert upstream_path(svc, route, rp, "/messages/threads/t1/messages") == "/threads/t1/messages"


@check("kong.yml: no Admin API route or upstream (no localhost / 8001 / 8444 / admin path)")
def _():
    for svc in kong()["services"]:
        u = urlparse(svc["url"])
        assert u.hostname not in ("localhost", "127.0.0.1", "::1", "kong"), svc["url"]
        assert u.port not in (8001, 8444, 8002, 8445, 8100), svc["url"]
    for _svc, route in routes():
        for rp in route_paths(route):
            assert "admin" not in rp.lower(), rp


@check("kong.yml, kong.k8s.yml: jwt on every v1 route (key_claim_name iss, claims exp+nbf, header only, not on preflight)")
def _():
    for label, cfg in kong_variants():
        for svc, route in routes(cfg):
            if not any(rp.startswith("/v1/") for rp in route_paths(route)):
                continue
            jwts = jwt_plugins_for(cfg, svc, route)
            assert len(jwts) == 1, "%s route %s: expected one jwt plugin, found %d" % (label, route["name"], len(jwts))
            cfg_ = jwts[0]["config"]
            assert cfg_["key_claim_name"] == "iss", cfg_
            assert set(cfg_["claims_to_verify"]) == {"exp", "nbf"}, cfg_
            assert cfg_.get("uri_param_names") == [], "tokens must not be accepted in query strings"
            assert cfg_.get("cookie_names", []) == []
            assert cfg_.get("run_on_preflight") is False, "preflight requests carry no token"
            assert not cfg_.get("anonymous"), "an anonymous consumer would let requests without a token through"


@check("kong.yml, kong.k8s.yml: every jwt plugin has maximum_expiration 86400 (= JWT_MAX_TTL) and verifies exp")
def _():
    for label, cfg in kong_variants():
        jwts = [(scope, p) for scope, p in all_plugins(cfg) if p["name"] == "jwt"]
        assert jwts, "%s: no jwt plugin" % label
        for scope, p in jwts:
            c = p.get("config") or {}
            assert c.get("maximum_expiration") == JWT_MAX_TTL, "%s %s jwt: maximum_expiration %r, want %d" % (
                label, scope, c.get("maximum_expiration"), JWT_MAX_TTL)
            # Kong refuses maximum_expiration without exp among the verified claims.
            assert "exp" in (c.get("claims_to_verify") or []), "%s %s jwt: exp not verified" % (label, scope)


@check("kong.k8s.yml is what tools/kong_k8s.py writes from kong.yml (regenerate: python3 tools/kong_k8s.py)")
def _():
    with open(KONG_FILE, encoding="utf-8") as f:
        want = kong_k8s_generator.render(f.read())
    assert os.path.exists(KONG_K8S_FILE), "gateway/kong.k8s.yml is missing"
    with open(KONG_K8S_FILE, encoding="utf-8") as f:
        have = f.read()
    assert have == want, "gateway/kong.k8s.yml is out of date or edited by hand: run python3 tools/kong_k8s.py"


@check("kong.k8s.yml = kong.yml without messages-web, + on messages-inf326 only: the v1 jwt plugin and X-User-Id removal")
def _():
    base, k8s = copy.deepcopy(kong()), copy.deepcopy(kong_k8s())
    base["services"] = [svc for svc in base["services"] if svc["name"] != WEB_SERVICE]
    # The credential is checked by "tokens are RS256 with one public key"; only its key must agree.
    assert kong_credential(base)["key"] == kong_credential(k8s)["key"]
    kong_credential(base).clear()
    kong_credential(k8s).clear()
    v1_jwt = [p for p in service_plugins(base, "messages-v1") if p["name"] == "jwt"]
    assert len(v1_jwt) == 1, v1_jwt
    inf326 = [svc for svc in k8s.get("services") or [] if svc["name"] == INF326_SERVICE]
    assert len(inf326) == 1, "kong.k8s.yml: expected one service %s" % INF326_SERVICE
    plugins = inf326[0].get("plugins") or []
    jwts = [p for p in plugins if p["name"] == "jwt"]
    assert jwts == v1_jwt, "kong.k8s.yml %s jwt differs from the v1 jwt plugin: %s" % (INF326_SERVICE, jwts)
    strips = [p for p in plugins if p["name"] == "request-transformer"]
    assert len(strips) == 1 and "X-User-Id" in strips[0]["config"]["remove"]["headers"], strips
    # Without these two, the Kubernetes variant must be kong.yml itself.
    rest = [p for p in plugins if p["name"] not in ("jwt", "request-transformer")]
    base_inf326 = [svc for svc in base["services"] if svc["name"] == INF326_SERVICE][0]
    if rest or "plugins" in base_inf326:
        inf326[0]["plugins"] = rest
    else:
        del inf326[0]["plugins"]
    assert k8s == base, "kong.k8s.yml differs from kong.yml elsewhere than the %s plugins and %s" % (
        INF326_SERVICE, WEB_SERVICE)


@check("kong.yml (compose): INF326 route open for the old web client, said in a comment; compose INF326_AUTH agrees")
def _():
    svc, route, _rp = route_for("/messages/threads/t1/messages", "POST")
    jwt = bool(jwt_plugins_for(kong(), svc, route))
    text = open(KONG_FILE, encoding="utf-8").read()
    assert re.search(r"#.*No jwt here in compose", text), "the open INF326 route of compose must be documented in kong.yml"
    # Open route: the service must take X-User-Id (header); behind jwt it must take the token.
    want = "jwt" if jwt else "header"
    got = compose()["x-messages-env"].get("INF326_AUTH")
    assert got == want, "compose INF326_AUTH=%s, but compose's Kong route %s jwt" % (got, "has" if jwt else "has no")


@check("kong.k8s.yml: every INF326 route requires jwt and drops the client's X-User-Id")
def _():
    cfg = kong_k8s()
    found = False
    for svc, route in routes(cfg):
        if service_path(svc) != "/threads" and not any(rp.startswith("/messages/threads") for rp in route_paths(route)):
            continue
        found = True
        plugins = (svc.get("plugins") or []) + (route.get("plugins") or []) + (cfg.get("plugins") or [])
        assert any(_jwt_enforces(p, route) for p in plugins), "route %s has no enforcing jwt" % route["name"]
        removed = [h.lower() for p in plugins if p["name"] == "request-transformer"
                   for h in ((p.get("config") or {}).get("remove") or {}).get("headers") or []]
        assert "x-user-id" in removed, "route %s passes the client's X-User-Id on" % route["name"]
    assert found, "kong.k8s.yml has no INF326 route"


@check("kong.yml: jwt credential key = JWT_ISSUER and secret = compose JWT_SECRET (HS256)")
def _():
    cred = kong_credential()
    assert cred.get("algorithm", "HS256") == "HS256", cred
    env = compose()["x-messages-env"]
    assert cred["key"] == env["JWT_ISSUER"] == "messages-service", (cred["key"], env["JWT_ISSUER"])
    assert cred["secret"] == env["JWT_SECRET"], "kong.yml jwt secret differs from docker-compose.yml JWT_SECRET"
    assert cred["secret"].startswith(LOCAL_ONLY), "the committed secret must say it is for compose only"
    for k in OVERLAYS:
        assert configmap_env(k)["JWT_ISSUER"] == cred["key"], k


@check("kong.yml: rate-limiting policy local with a minute limit and client headers")
def _():
    cfg = global_plugin("rate-limiting")
    assert cfg["policy"] == "local", cfg
    assert int(cfg["minute"]) > 0, cfg
    assert cfg.get("hide_client_headers", False) is False, "RateLimit headers must be sent"
    assert cfg.get("error_code", 429) == 429


@check("kong.yml: correlation-id X-Request-ID, uuid generator, echoed downstream")
def _():
    cfg = global_plugin("correlation-id")
    assert cfg["header_name"] == "X-Request-ID", cfg
    assert cfg["generator"] == "uuid", cfg
    assert cfg["echo_downstream"] is True, cfg


@check("kong.yml: cors with explicit origins (no *), OPTIONS, request and exposed headers")
def _():
    cfg = global_plugin("cors")
    origins = cfg["origins"]
    assert origins and all(o != "*" and "*" not in o for o in origins), origins
    for o in origins:
        u = urlparse(o)
        assert u.scheme in ("http", "https") and u.hostname and u.path in ("", None), o
    assert "OPTIONS" in cfg["methods"], cfg["methods"]
    route_methods = {m for _s, r in routes() for m in r.get("methods") or []}
    assert route_methods <= set(cfg["methods"]), "cors methods miss %s" % (route_methods - set(cfg["methods"]))
    missing = EXPECTED_CORS_HEADERS - set(cfg["headers"])
    assert not missing, "cors headers miss %s" % missing
    missing = EXPECTED_CORS_EXPOSED - set(cfg["exposed_headers"])
    assert not missing, "cors exposed_headers miss %s" % missing
    assert cfg.get("credentials", False) is False


@check("kong.yml: request-size-limiting 64 kilobytes")
def _():
    cfg = global_plugin("request-size-limiting")
    assert cfg["allowed_payload_size"] == 64 and cfg["size_unit"] == "kilobytes", cfg


@check("kong.yml: prometheus plugin present")
def _():
    global_plugin("prometheus")


# ---------------------------------------------------------------- deployment/

@check("k8s: base and overlays render; Deployment has no replicas (the HPA owns the count)")
def _():
    for k in KUSTOMIZATIONS:
        rendered(k)
    for k in ["deployment/base"] + OVERLAYS:
        d = one(k, "Deployment", "messages-service")
        assert "replicas" not in d["spec"], "%s: Deployment sets replicas" % k
        hpa = one(k, "HorizontalPodAutoscaler", "messages-service")
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", "messages-service"), ref
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@check("k8s: prod HPA keeps more pods than dev; prod image tag pinned; jwt in every overlay")
def _():
    dev = one("deployment/overlays/dev", "HorizontalPodAutoscaler", "messages-service")["spec"]
    prod = one("deployment/overlays/prod", "HorizontalPodAutoscaler", "messages-service")["spec"]
    assert prod["minReplicas"] > dev["minReplicas"] and prod["minReplicas"] >= 2, (dev, prod)
    image = container(one("deployment/overlays/prod", "Deployment", "messages-service"))["image"]
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    assert "@sha256:" in image or re.fullmatch(r"v?\d+\.\d+\.\d+.*", tag), "prod image not pinned: %s" % image
    for k in OVERLAYS:
        assert configmap_env(k)["AUTH_MODE"] == "jwt", k
        job_image = container(one(k, "Job", "messages-service-migrate"))["image"]
        assert job_image == container(one(k, "Deployment", "messages-service"))["image"], k


@check("k8s: probes: startup + liveness on /health/live, readiness on /health/ready, port http")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        c = container(one(k, "Deployment", "messages-service"))
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready", c["readinessProbe"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/health/live", c["livenessProbe"]
        assert c["startupProbe"]["httpGet"]["path"] in ("/health/live", "/health/ready"), c["startupProbe"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["port"] in ("http", 8080), c[probe]
        assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", 8080)], c["ports"]


@check("k8s: preStop sleep, terminationGracePeriodSeconds > preStop + 30 s drain")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        d = one(k, "Deployment", "messages-service")
        cmd = container(d)["lifecycle"]["preStop"]["exec"]["command"]
        assert cmd[0] in ("/bin/sleep", "sleep") and len(cmd) == 2, cmd
        grace = pod_spec(d)["terminationGracePeriodSeconds"]
        assert grace > int(cmd[1]) + SERVICE_DRAIN_SECONDS, grace


@check("k8s: restricted security context (non-root numeric ids, read-only root, no escalation, drop ALL, RuntimeDefault)")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        for kind, name in (("Deployment", "messages-service"), ("Job", "messages-service-migrate")):
            obj = one(k, kind, name)
            pod = pod_spec(obj).get("securityContext") or {}
            c = container(obj)
            sc = c.get("securityContext") or {}

            def eff(key):
                return sc.get(key, pod.get(key))
            assert eff("runAsNonRoot") is True, (k, name)
            assert isinstance(eff("runAsUser"), int) and eff("runAsUser") > 0, (k, name)
            assert isinstance(eff("runAsGroup"), int) and eff("runAsGroup") > 0, (k, name)
            assert sc.get("readOnlyRootFilesystem") is True, (k, name)
            assert sc.get("allowPrivilegeEscalation") is False, (k, name)
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (k, name)
            seccomp = (sc.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
            assert seccomp == "RuntimeDefault", (k, name)
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
            vols = {v["name"]: v for v in pod_spec(obj).get("volumes") or []}
            assert "/tmp" in mounts and "emptyDir" in vols[mounts["/tmp"]], "%s %s: /tmp must be an emptyDir" % (k, name)
            assert pod_spec(obj).get("automountServiceAccountToken") is False, (k, name)


@check("k8s: resources requests and limits, topologySpreadConstraints")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        d = one(k, "Deployment", "messages-service")
        res = container(d)["resources"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(part) or {}), (k, res)
        tsc = pod_spec(d).get("topologySpreadConstraints") or []
        assert {t["topologyKey"] for t in tsc} >= {"kubernetes.io/hostname"}, tsc


@check("k8s: Service port 80 -> http (8080); PodDisruptionBudget selects the API pods")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        svc = one(k, "Service", "messages-service")
        assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] in (
            [("http", 80, "http")], [("http", 80, 8080)]), svc["spec"]["ports"]
        d = one(k, "Deployment", "messages-service")
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(a) == b for a, b in svc["spec"]["selector"].items()), "Service selector"
        pdb = one(k, "PodDisruptionBudget", "messages-service")
        assert all(labels.get(a) == b for a, b in pdb["spec"]["selector"]["matchLabels"].items()), "PDB selector"
        job = one(k, "Job", "messages-service-migrate")
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        assert not all(job_labels.get(a) == b for a, b in svc["spec"]["selector"].items()), \
            "the Service must not select the migration Job's pod"


DNS_PEERS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
              "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]


def egress_ports(spec):
    """{(port, protocol)} of a policy's egress rules; each rule must name its ports and its peers."""
    ports = set()
    for rule in spec["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows every port"
        assert rule.get("to"), "an egress rule without `to` allows every address: %s" % rule
        for peer in rule["to"]:
            cidr = (peer.get("ipBlock") or {}).get("cidr", "")
            assert not cidr.endswith("/0"), "egress to %s is every address" % cidr
        for p in rule["ports"]:
            assert "endPort" not in p, p
            ports.add((p["port"], p.get("protocol", "TCP")))
    return ports


@check("k8s: NetworkPolicy: ingress only from Kong on 8080; egress exactly 5432, 6379, 5672 and 53, each with `to:`, DNS to kube-dns only, no 443")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        spec = one(k, "NetworkPolicy", "messages-service")["spec"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}, spec["policyTypes"]
        sel = spec["podSelector"]["matchLabels"]
        for kind, name in (("Deployment", "messages-service"), ("Job", "messages-service-migrate")):
            labels = one(k, kind, name)["spec"]["template"]["metadata"]["labels"]
            assert all(labels.get(a) == b for a, b in sel.items()), "%s is not covered by the NetworkPolicy" % name
        assert len(spec["ingress"]) == 1, spec["ingress"]
        ing = spec["ingress"][0]
        assert [(p.get("protocol", "TCP"), p["port"]) for p in ing["ports"]] == [("TCP", 8080)], ing["ports"]
        assert ing["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "kong"}}}], ing["from"]
        if k in OVERLAYS:  # the overlays deploy Kong next to the service: its pods carry that label
            kong_labels = one(k, "Deployment", "kong")["spec"]["template"]["metadata"]["labels"]
            assert kong_labels.get("app.kubernetes.io/name") == "kong", kong_labels
        ports = egress_ports(spec)
        assert ports == EXPECTED_EGRESS, "egress ports %s != %s" % (sorted(ports), sorted(EXPECTED_EGRESS))
        for rule in spec["egress"]:
            if {p["port"] for p in rule["ports"]} == {53}:
                assert rule["to"] == DNS_PEERS, "DNS egress must go to kube-dns only: %s" % rule["to"]
        # 443 only through the alert-webhook component, which no overlay includes while none sets a webhook.
        for np in objects(k, "NetworkPolicy"):
            if np["metadata"]["name"] not in ("kong", WEBHOOK_POLICY) and "Egress" in np["spec"]["policyTypes"]:
                assert all(port != 443 for port, _ in egress_ports(np["spec"])), "%s: 443 egress" % k
            assert np["metadata"]["name"] != WEBHOOK_POLICY, "%s: the webhook component without a webhook" % k


WEBHOOK_POLICY = "messages-service-alert-webhook"


def prod_policies_with(component):
    """The NetworkPolicies of an overlay of prod that adds `component`, as docs/deployment.md tells operators to."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix=".validate-", dir=os.path.join(ROOT, "deployment")) as folder:
        with open(os.path.join(folder, "kustomization.yaml"), "w", encoding="utf-8") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    "resources:\n  - ../overlays/prod\ncomponents:\n  - ../components/%s\n" % component)
        out = subprocess.run([kubectl(), "kustomize", folder], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr.strip()
        return {o["metadata"]["name"]: o for o in yaml.safe_load_all(out.stdout) if o and o["kind"] == "NetworkPolicy"}


def egress_only_policy(policies, name):
    """The spec of `name`, checked to be egress only, for the API's pods."""
    spec = policies[name]["spec"]
    assert spec["policyTypes"] == ["Egress"] and not spec.get("ingress"), spec
    assert spec["podSelector"] == policies["messages-service"]["spec"]["podSelector"], spec["podSelector"]
    return spec


@check("k8s: the otlp-egress component, added to the prod overlay, opens TCP 4318 to one namespace only")
def _():
    otlp = egress_only_policy(prod_policies_with("otlp-egress"), "messages-service-otlp")
    assert egress_ports(otlp) == {(4318, "TCP")}, egress_ports(otlp)
    for rule in otlp["egress"]:
        assert [list(peer) for peer in rule["to"]] == [["namespaceSelector"]], rule["to"]


@check("k8s: the alert-webhook component, added to the prod overlay, opens TCP 443 to its ipBlock only, and nothing else")
def _():
    webhook = egress_only_policy(prod_policies_with("alert-webhook-egress"), WEBHOOK_POLICY)
    assert egress_ports(webhook) == {(443, "TCP")}, egress_ports(webhook)
    for rule in webhook["egress"]:
        assert all(set(peer) == {"ipBlock"} for peer in rule["to"]), "443 must go to ipBlocks only: %s" % rule["to"]


@check("k8s: Kong's NetworkPolicy: proxy 8000 from the ingress controller's namespace, status 8100 from Prometheus; out to the API and DNS only")
def _():
    for k in OVERLAYS:
        spec = one(k, "NetworkPolicy", "kong")["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kong"}, spec["podSelector"]
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}, spec["policyTypes"]
        rules = {tuple(p["port"] for p in r["ports"]): r["from"] for r in spec["ingress"]}
        assert set(rules) == {(8000,), (8100,)}, rules
        assert all(peer.get("namespaceSelector") for peer in rules[(8000,)]), "8000 must name the ingress namespace"
        assert all(peer.get("podSelector") and peer.get("namespaceSelector") for peer in rules[(8100,)]), \
            "8100 must name Prometheus' pods in their namespace"
        assert egress_ports(spec) == {(8080, "TCP"), (53, "UDP"), (53, "TCP")}, egress_ports(spec)


@check("k8s: migration Job is an Argo CD Sync/PreSync hook after the ConfigMap and Secret, before the Deployment")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        job = one(k, "Job", "messages-service-migrate")
        ann = job["metadata"]["annotations"]
        assert ann["argocd.argoproj.io/hook"] in ("Sync", "PreSync"), ann
        assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation", ann
        c = container(job)
        assert c.get("args") == ["migrate"] or c.get("command", [])[-1:] == ["migrate"], c
        assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
        env_from = {(("configMap" if "configMapRef" in e else "secret"),
                     (e.get("configMapRef") or e.get("secretRef"))["name"]) for e in c["envFrom"]}
        cm = [o for o in objects(k, "ConfigMap") if ("configMap", o["metadata"]["name"]) in env_from]
        secret = [o for o in objects(k, "Secret") if ("secret", o["metadata"]["name"]) in env_from]
        assert len(cm) == 1 and len(secret) == 1, "the Job must read the rendered ConfigMap and Secret"
        assert wave(cm[0]) < wave(job) and wave(secret[0]) < wave(job), (wave(cm[0]), wave(secret[0]), wave(job))
        assert wave(job) < wave(one(k, "Deployment", "messages-service")), "the Deployment must come after the Job"
        # The API reads the same settings.
        api_env = container(one(k, "Deployment", "messages-service"))["envFrom"]
        assert sorted(map(str, api_env)) == sorted(map(str, c["envFrom"])), "Job and API read different settings"


@check("k8s: the Secret template holds no value (no placeholder, no JWT_SECRET): the real one is made out of band")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        for secret in objects(k, "Secret"):
            assert not secret.get("data") and not secret.get("stringData"), "%s: the template holds values" % k
            # docs/deployment.md (Kubernetes with kubectl) tells kubectl users to skip it by this label.
            assert secret["metadata"]["labels"].get("messages-service/secret-template") == "true", secret["metadata"]["labels"]


@check("k8s: no placeholder or committed development secret anywhere in a Kubernetes render")
def _():
    compose_env = compose()["x-messages-env"]
    known = ["REPLACE_ME", compose_env["JWT_SECRET"], compose_env["CURSOR_SECRET"], "dev-only-"]
    for k in ["deployment/base", "deployment/kong"] + OVERLAYS:
        text = yaml.safe_dump_all(rendered(k))
        for placeholder in known:
            assert placeholder not in text, "%s renders %r" % (k, placeholder)


@check("k8s: tokens are RS256 with one public key: Kong's credential and the service's JWT_PUBLIC_KEY_FILE (mounted from its ConfigMap)")
def _():
    with open(os.path.join(ROOT, "deployment", "base", "jwt-public.pem"), encoding="utf-8") as f:
        pem = f.read()
    assert "BEGIN PUBLIC KEY" in pem and "PRIVATE" not in pem, "deployment/base/jwt-public.pem must be a public key only"
    cred = kong_credential(kong_k8s())
    assert cred.get("algorithm") == "RS256" and cred.get("secret") == "unused-with-rs256", cred
    assert cred["rsa_public_key"] == pem, "kong.k8s.yml's public key differs from deployment/base/jwt-public.pem"
    for k in OVERLAYS:
        env = configmap_env(k)
        path = env.get("JWT_PUBLIC_KEY_FILE")
        assert path, "%s: no JWT_PUBLIC_KEY_FILE" % k
        keys = [o for o in objects(k, "ConfigMap") if o["metadata"]["name"].startswith("messages-service-jwt-public-key")]
        assert len(keys) == 1 and keys[0]["data"] == {os.path.basename(path): pem}, "%s: the key ConfigMap" % k
        for kind, name in (("Deployment", "messages-service"), ("Job", "messages-service-migrate")):
            spec = pod_spec(one(k, kind, name))
            volumes = {v["name"]: v for v in spec.get("volumes") or []}
            mounts = [m for c in spec["containers"] for m in c.get("volumeMounts") or []
                      if m["mountPath"] == os.path.dirname(path)]
            assert len(mounts) == 1, "%s %s: nothing mounted at %s" % (k, name, os.path.dirname(path))
            source = volumes[mounts[0]["name"]].get("configMap") or {}
            assert source.get("name") == keys[0]["metadata"]["name"], "%s %s mounts %s" % (k, name, source)
        kong_cm = [o for o in objects(k, "ConfigMap") if o["metadata"]["name"].startswith("kong-declarative-config")]
        assert len(kong_cm) == 1 and kong_credential(yaml.safe_load(kong_cm[0]["data"]["kong.yml"])) == cred, \
            "%s: Kong's ConfigMap has another credential" % k


@check("k8s: Kong DB-less, no Admin API, config generated from gateway/kong.k8s.yml itself")
def _():
    with open(KONG_K8S_FILE, encoding="utf-8") as f:
        kong_text = f.read()
    for k in ["deployment/kong"] + OVERLAYS:
        d = one(k, "Deployment", "kong")
        c = container(d, "kong")
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["KONG_DATABASE"] == "off" and env["KONG_ADMIN_LISTEN"] == "off", env
        vols = {v["name"]: v for v in pod_spec(d)["volumes"]}
        mount = [m for m in c["volumeMounts"] if env["KONG_DECLARATIVE_CONFIG"].startswith(m["mountPath"] + "/")]
        assert len(mount) == 1, "KONG_DECLARATIVE_CONFIG is not on a mounted volume"
        cm_name = vols[mount[0]["name"]]["configMap"]["name"]
        cm = one(k, "ConfigMap", cm_name)
        filename = os.path.basename(env["KONG_DECLARATIVE_CONFIG"])
        assert cm["data"][filename] == kong_text, "%s: Kong's ConfigMap differs from gateway/kong.k8s.yml" % k
        for svc in objects(k, "Service"):
            for p in svc["spec"]["ports"]:
                assert p["targetPort"] not in (8001, 8444, "admin"), "Admin API exposed by %s" % svc["metadata"]["name"]


@check("k8s: no route of a rendered Kong ConfigMap accepts POST/PUT/PATCH/DELETE without jwt (route, service or global)")
def _():
    problems = []
    for k in KUSTOMIZATIONS:
        configs = kong_configs(k)
        if objects(k, "Deployment", "kong") and not configs:
            problems.append("%s deploys Kong but renders no Kong ConfigMap" % k)
        for cm_name, key, cfg in configs:
            problems += ["%s: ConfigMap %s (%s): %s" % (k, cm_name, key, bad) for bad in unprotected_write_routes(cfg)]
    assert not problems, "write routes without jwt:\n       " + "\n       ".join(problems)


@check("k8s: the write-route-without-jwt detector itself flags what it must and only that")
def _():
    jwt = {"name": "jwt", "config": {"key_claim_name": "iss"}}

    def cfg(route_plugins=(), svc_plugins=(), top_plugins=(), methods=("POST",)):
        route = {"name": "r", "paths": ["/x/"], "plugins": list(route_plugins)}
        if methods is not None:
            route["methods"] = list(methods)
        return {"_format_version": "3.0",
                "services": [{"name": "s", "url": "http://u:80", "routes": [route], "plugins": list(svc_plugins)}],
                "plugins": list(top_plugins)}
    protected = {
        "jwt on the route": cfg(route_plugins=[jwt]),
        "jwt on the service": cfg(svc_plugins=[jwt]),
        "global jwt": cfg(top_plugins=[jwt]),
        "top-level jwt naming the route": cfg(top_plugins=[dict(jwt, route="r")]),
        "top-level jwt naming the service": cfg(top_plugins=[dict(jwt, service={"name": "s"})]),
        "read-only route": cfg(methods=("GET", "OPTIONS")),
    }
    unprotected = {
        "no jwt": cfg(),
        "no methods listed (all)": cfg(methods=None),
        "jwt disabled": cfg(svc_plugins=[dict(jwt, enabled=False)]),
        "jwt with an anonymous consumer": cfg(svc_plugins=[{"name": "jwt", "config": {"anonymous": "guest"}}]),
        "jwt for one consumer only": cfg(top_plugins=[dict(jwt, consumer="c")]),
        "jwt on another route": cfg(top_plugins=[dict(jwt, route="other")]),
        "jwt on https only, route also http": cfg(svc_plugins=[dict(jwt, protocols=["https"])]),
        "other plugins only": cfg(svc_plugins=[{"name": "request-transformer", "config": {}}]),
    }
    top_level_route = {"_format_version": "3.0", "services": [{"name": "s", "url": "http://u:80"}],
                       "routes": [{"name": "r", "service": "s", "paths": ["/x/"], "methods": ["DELETE"]}]}
    unprotected["top-level route, no jwt"] = top_level_route
    protected["top-level route, jwt on its service"] = dict(
        top_level_route, services=[{"name": "s", "url": "http://u:80", "plugins": [jwt]}])
    for what, c in protected.items():
        assert unprotected_write_routes(c) == [], "flagged although protected: %s" % what
    for what, c in unprotected.items():
        assert unprotected_write_routes(c), "not flagged: %s" % what


@check("k8s: service settings: INF326_AUTH jwt, JWT_MAX_TTL = Kong's maximum_expiration, TRUSTED_PROXY_HOPS 1")
def _():
    kong_ttls = {p["config"].get("maximum_expiration") for _scope, p in all_plugins(kong_k8s()) if p["name"] == "jwt"}
    for k in ["deployment/base"] + OVERLAYS:
        env = configmap_env(k)
        assert env.get("AUTH_MODE") == "jwt", (k, env.get("AUTH_MODE"))
        assert env.get("INF326_AUTH") == "jwt", "%s: INF326_AUTH=%s, must be jwt on Kubernetes" % (k, env.get("INF326_AUTH"))
        assert kong_ttls == {int(env.get("JWT_MAX_TTL", "0"))}, (k, env.get("JWT_MAX_TTL"), kong_ttls)
        assert env.get("TRUSTED_PROXY_HOPS") == "1", (k, env.get("TRUSTED_PROXY_HOPS"))
        assert "CURSOR_SECRET" not in env and "JWT_SECRET" not in env, "%s: secrets belong in the Secret" % k


@check("argocd: Applications for dev and prod: automated prune + selfHeal, CreateNamespace, existing path")
def _():
    for env, rel in ARGO_APPS.items():
        app = load_yaml(os.path.join(ROOT, rel))
        assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1", rel
        spec = app["spec"]
        assert spec["source"]["path"] == "deployment/overlays/" + env, spec["source"]
        assert os.path.isfile(os.path.join(ROOT, spec["source"]["path"], "kustomization.yaml"))
        auto = spec["syncPolicy"]["automated"]
        assert auto["prune"] is True and auto["selfHeal"] is True, auto
        assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"], spec["syncPolicy"]
        ns = [o for o in rendered(spec["source"]["path"]) if o["metadata"].get("namespace")]
        assert {o["metadata"]["namespace"] for o in ns} == {spec["destination"]["namespace"]}, rel
        assert urlparse(spec["source"]["repoURL"]).scheme == "https"


ARGO_PROJECTS = "deployment/argocd/messages-project.yaml"
RELEASE_TAG = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


@check("argocd: each Application in its own AppProject: this repository, its namespace, the kinds its overlay renders; prod follows a release tag")
def _():
    with open(os.path.join(ROOT, ARGO_PROJECTS), encoding="utf-8") as f:
        projects = {p["metadata"]["name"]: p for p in yaml.safe_load_all(f) if p}
    for env, rel in ARGO_APPS.items():
        app = load_yaml(os.path.join(ROOT, rel))
        spec = app["spec"]
        assert spec["project"] != "default", "%s: the default project allows every repository, namespace and kind" % rel
        project = projects.get(spec["project"])
        assert project and project["kind"] == "AppProject", "%s: no AppProject %s in %s" % (rel, spec["project"], ARGO_PROJECTS)
        pspec = project["spec"]
        assert pspec["sourceRepos"] == [spec["source"]["repoURL"]], pspec["sourceRepos"]
        assert pspec["destinations"] == [{"server": spec["destination"]["server"],
                                          "namespace": spec["destination"]["namespace"]}], pspec["destinations"]
        assert pspec.get("clusterResourceWhitelist") == [{"group": "", "kind": "Namespace"}], pspec.get("clusterResourceWhitelist")
        allowed = {(k["group"], k["kind"]) for k in pspec["namespaceResourceWhitelist"]}
        assert all("*" not in g + k for g, k in allowed), "wildcards in %s" % spec["project"]
        rendered_kinds = {(o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "", o["kind"])
                          for o in rendered(spec["source"]["path"])}
        assert rendered_kinds <= allowed, "%s renders kinds its project refuses: %s" % (rel, sorted(rendered_kinds - allowed))
        if env == "prod":
            assert RELEASE_TAG.match(str(spec["source"]["targetRevision"])), \
                "prod must follow a release tag, not %r" % spec["source"]["targetRevision"]


@check("k8s: the Secret survives pruning and the Application's deletion (Prune=false,Delete=false)")
def _():
    for k in OVERLAYS:
        secret = one(k, "Secret", "messages-service-secrets")
        options = {o.strip() for o in secret["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].split(",")}
        assert {"Prune=false", "Delete=false"} <= options, "%s: %s" % (k, options)


@check("k8s: no image is latest or untagged; prod runs every image (messages-service, Kong) pinned by digest")
def _():
    for k in ["deployment/base"] + OVERLAYS:
        for obj in rendered(k):
            spec = pod_spec(obj) if obj["kind"] in ("Deployment", "Job") else None
            for c in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
                image = c["image"]
                name = image.split("@")[0].rsplit("/", 1)[-1]
                assert "@sha256:" in image or ":" in name, "%s: %s has no tag" % (k, image)
                assert not name.endswith(":latest"), "%s: %s" % (k, image)
    for obj in rendered("deployment/overlays/prod"):
        if obj["kind"] in ("Deployment", "Job"):
            for c in pod_spec(obj)["containers"] + pod_spec(obj).get("initContainers", []):
                assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), "prod %s: %s not pinned by digest" % (
                    obj["metadata"]["name"], c["image"])


# ---------------------------------------------------------------- compose, Dockerfile

@check("compose: postgres, redis, rabbitmq with healthchecks; migrate one-shot; API waits for all; Kong DB-less")
def _():
    s = compose()["services"]
    for name in ("postgres", "redis", "rabbitmq", "messages-service", "kong"):
        assert "healthcheck" in s[name], "%s has no healthcheck" % name
    pg = s["postgres"]["environment"]
    assert pg["POSTGRES_DB"] == "messages" and pg["POSTGRES_USER"] == "messages", pg
    assert re.match(r"postgres:1[56]\b", s["postgres"]["image"]), s["postgres"]["image"]
    assert s["migrate"]["command"] == ["migrate"], s["migrate"]["command"]
    assert s["migrate"]["image"] == s["messages-service"]["image"], "migrate must use the API image"
    deps = s["messages-service"]["depends_on"]
    for name in ("postgres", "redis", "rabbitmq"):
        assert deps[name]["condition"] == "service_healthy", deps
    assert deps["migrate"]["condition"] == "service_completed_successfully", deps
    k = s["kong"]
    assert re.match(r"kong:3(\.|$)", k["image"]), k["image"]
    env = k["environment"]
    assert env["KONG_DATABASE"] == "off" and env["KONG_ADMIN_LISTEN"] == "off", env
    mounted = {v.split(":")[1]: v.split(":")[0] for v in k["volumes"]}
    assert mounted.get(env["KONG_DECLARATIVE_CONFIG"]) == "./gateway/kong.yml", k["volumes"]


@check("compose: only Kong's proxy port 8000 is published (a profile's tool UI on loopback only)")
def _():
    services = compose()["services"]
    published = {name: svc.get("ports") for name, svc in services.items() if svc.get("ports") and not svc.get("profiles")}
    assert published == {"kong": ["8000:8000"]}, published
    for name, svc in services.items():
        if svc.get("profiles"):
            for port in svc.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), "%s publishes %s beyond loopback" % (name, port)


@check("compose: the tracing profile's Jaeger takes OTLP/HTTP; the API's OTLP endpoint is empty unless set")
def _():
    services = compose()["services"]
    jaeger = services["jaeger"]
    assert jaeger.get("profiles") == ["tracing"], jaeger.get("profiles")
    assert str(jaeger["environment"].get("COLLECTOR_OTLP_ENABLED")) == "true", jaeger["environment"]
    env = compose()["x-messages-env"]
    assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", env.get("OTEL_EXPORTER_OTLP_ENDPOINT")


@check("compose: API settings: AUTH_MODE jwt, JWT_MAX_TTL, TRUSTED_PROXY_HOPS 1, CURSOR_SECRET placeholder, URLs")
def _():
    env = compose()["x-messages-env"]
    assert env["AUTH_MODE"] == "jwt"
    assert str(env.get("JWT_MAX_TTL")) == str(JWT_MAX_TTL), env.get("JWT_MAX_TTL")
    assert str(env.get("TRUSTED_PROXY_HOPS")) == "1", env.get("TRUSTED_PROXY_HOPS")
    cursor = env.get("CURSOR_SECRET") or ""
    assert len(cursor.encode()) >= 32, "CURSOR_SECRET must be at least 32 bytes"
    assert cursor.startswith(LOCAL_ONLY), "the committed CURSOR_SECRET must say it is for compose only"
    assert cursor != env["JWT_SECRET"], "CURSOR_SECRET and JWT_SECRET must be different keys"
    assert urlparse(env["DATABASE_URL"]).hostname == "postgres" and urlparse(env["DATABASE_URL"]).path == "/messages"
    assert urlparse(env["REDIS_URL"]).hostname == "redis"
    assert urlparse(env["AMQP_URL"]).hostname == "rabbitmq"
    rabbit = compose()["services"]["rabbitmq"]["environment"]
    assert urlparse(env["AMQP_URL"]).username == rabbit["RABBITMQ_DEFAULT_USER"]


@check("Dockerfile: swift:6.3-noble -> ubuntu:noble, static stdlib, runtime libs, numeric user, entrypoint")
def _():
    text = open(DOCKERFILE, encoding="utf-8").read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms == ["swift:6.3-noble", "ubuntu:noble"], froms
    assert "--static-swift-stdlib" in text
    for pkg in ("libpq-dev", "libhiredis-dev", "librabbitmq-dev", "pkg-config",
                "libpq5", "libhiredis1.1.0", "librabbitmq4", "libcurl4t64", "ca-certificates", "tzdata"):
        assert re.search(r"\b%s\b" % re.escape(pkg), text), pkg
    assert "messages-service_MessagesService.resources" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), users
    assert re.search(r'^ENTRYPOINT \["/app/messages-service"\]\s*$', text, re.M)
    assert re.search(r'^CMD \["serve"\]\s*$', text, re.M)
    assert re.search(r"^EXPOSE 8080\s*$", text, re.M)
    dockerignore = open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8").read().split()
    assert ".build" in dockerignore and ".git" in dockerignore and ".local" in dockerignore


# ---------------------------------------------------------------- main

def main():
    passed = failed = 0
    source = None
    try:
        served_paths()
        source = _cache["served"][0]
    except Exception as e:  # reported by the checks that need it
        source = "unreadable (%s)" % e
    print("served paths from: %s" % source)
    for description, fn in CHECKS:
        try:
            fn()
        except AssertionError as e:
            failed += 1
            print("FAIL %s\n     %s" % (description, e or traceback.format_exc(limit=1).strip()))
        except Exception:
            failed += 1
            print("FAIL %s\n     %s" % (description, traceback.format_exc(limit=2).strip().replace("\n", "\n     ")))
        else:
            passed += 1
            print("ok   %s" % description)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
