"""Install-time settings of the WorkflowTemplate: where it lives and what the cluster provides.

These are not workflow parameters: a UI user re-running the benchmark must not be able to point it
at another service account, image or Secret. They change only by re-installing the template.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from steps.errors import UsageError
from steps.shared import ZoneAffinity

__all__ = ["K8S_NAME_PATTERN", "PLACEHOLDER_IMAGE_REGISTRY", "STEPS", "TemplateOptions"]

# DAG task = template = step module = image build target, in DAG order.
STEPS = ("readiness", "tokenizer", "load", "aggregate", "report")

#: A Kubernetes object name or namespace (RFC 1123 label): what the API server accepts.
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: The default image registry names no real registry: fine for reading rendered YAML, never
#: for a template a cluster runs (every pod would fail to pull). `make images` publishes them.
PLACEHOLDER_IMAGE_REGISTRY = "llm-baseline-bench"


class TemplateOptions(BaseModel):
    """Cluster-side settings baked into the manifests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        default="llm-baseline",
        pattern=K8S_NAME_PATTERN,
        description="WorkflowTemplate name (the baseline's; another scenario's: NAME-<scenario>)",
    )
    namespace: str = Field(
        default="benchmarking", pattern=K8S_NAME_PATTERN, description="namespace of the workflows"
    )
    image_registry: str = Field(
        default=PLACEHOLDER_IMAGE_REGISTRY,
        min_length=1,
        description="image repository prefix; a step's image is <registry>/<step>:<tag>",
    )
    image_tag: str = Field(default="0.1.0", min_length=1, description="tag of every step image")
    image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    service_account: str = Field(
        default="inference-perf-sa",
        pattern=K8S_NAME_PATTERN,
        description="pod service account (Argo executor RBAC; S3 access via IRSA/Pod Identity)",
    )
    artifact_repository_configmap: str | None = Field(
        default=None,
        pattern=K8S_NAME_PATTERN,
        description="ConfigMap of the artifact repository; unset = the controller's default",
    )
    artifact_repository_key: str | None = Field(
        default=None, description="key inside that ConfigMap; unset = its default-v1 annotation"
    )
    hf_token_secret: str = Field(
        default="hf-token",
        pattern=K8S_NAME_PATTERN,
        description="Secret holding the Hugging Face token",
    )
    hf_token_key: str = Field(default="token", min_length=1, description="key in that Secret")
    api_key_secret: str | None = Field(
        default=None,
        pattern=K8S_NAME_PATTERN,
        description="Secret holding the endpoint's bearer token; unset = no API key",
    )
    api_key_key: str = Field(default="api-key", min_length=1, description="key in that Secret")
    ca_bundle_configmap: str | None = Field(
        default=None,
        pattern=K8S_NAME_PATTERN,
        description="ConfigMap holding the CA bundle that signed an https endpoint's certificate "
        "(a private CA); unset = the image's system CAs",
    )
    ca_bundle_key: str = Field(
        default="ca.crt",
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="key (PEM file) in that ConfigMap",
    )
    zone_affinity: ZoneAffinity = Field(
        default=ZoneAffinity.required,
        description="the load pod's podAffinity to the model pods' zone: required (the guide's "
        "same-zone rule), preferred (same zone when possible) or off; clusters whose nodes carry "
        "no topology.kubernetes.io/zone label (kind, minikube, k3d) need preferred or off",
    )
    load_pods: int = Field(
        default=1,
        ge=1,
        le=64,
        description="load pods sending one schedule together (1 = one load pod; N > 1 adds the "
        "start coordinator daemon and fans the load task out, README 'Load from several pods')",
    )
    workflow_deadline_s: int = Field(
        default=6 * 3600, ge=600, description="activeDeadlineSeconds of the whole workflow"
    )
    ttl_after_completion_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="how long finished workflows stay visible"
    )

    def require_published_images(self) -> None:
        """Refuse to install a template whose images point at the placeholder registry."""
        if self.image_registry == PLACEHOLDER_IMAGE_REGISTRY:
            raise UsageError(
                f"install options: image_registry (--image-registry) is the placeholder "
                f"{PLACEHOLDER_IMAGE_REGISTRY!r}, which names no registry: publish the step "
                "images with `make images REGISTRY=<registry> TAG=<tag>` and pass "
                "--image-registry <registry> (and --image-tag <tag>)"
            )

    def image(self, step: str) -> str:
        """The image reference of one step's build target."""
        return f"{self.image_registry.rstrip('/')}/{step}:{self.image_tag}"
