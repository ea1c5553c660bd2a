"""Install-time settings of the WorkflowTemplate: where it lives and what the cluster provides.

These are not workflow parameters: a UI user re-running the benchmark must not be able to point it
at another service account, image or Secret. They change only by re-installing the template.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["STEPS", "TemplateOptions"]

# DAG task = template = step module = image build target, in DAG order.
STEPS = ("readiness", "tokenizer", "load", "aggregate", "report")

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class TemplateOptions(BaseModel):
    """Cluster-side settings baked into the manifests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        default="llm-baseline", pattern=_K8S_NAME, description="WorkflowTemplate name"
    )
    namespace: str = Field(
        default="benchmarking", pattern=_K8S_NAME, description="namespace of the workflows"
    )
    image_registry: str = Field(
        default="llm-baseline-bench",
        min_length=1,
        description="image repository prefix; a step's image is <registry>/<step>:<tag>",
    )
    image_tag: str = Field(default="0.1.0", min_length=1, description="tag of every step image")
    image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    service_account: str = Field(
        default="inference-perf-sa",
        pattern=_K8S_NAME,
        description="pod service account (Argo executor RBAC; S3 access via IRSA/Pod Identity)",
    )
    artifact_repository_configmap: str | None = Field(
        default=None,
        pattern=_K8S_NAME,
        description="ConfigMap of the artifact repository; unset = the controller's default",
    )
    artifact_repository_key: str | None = Field(
        default=None, description="key inside that ConfigMap; unset = its default-v1 annotation"
    )
    hf_token_secret: str = Field(
        default="hf-token", pattern=_K8S_NAME, description="Secret holding the Hugging Face token"
    )
    hf_token_key: str = Field(default="token", min_length=1, description="key in that Secret")
    api_key_secret: str | None = Field(
        default=None,
        pattern=_K8S_NAME,
        description="Secret holding the endpoint's bearer token; unset = no API key",
    )
    api_key_key: str = Field(default="api-key", min_length=1, description="key in that Secret")
    ca_bundle_configmap: str | None = Field(
        default=None,
        pattern=_K8S_NAME,
        description="ConfigMap holding the CA bundle that signed an https endpoint's certificate "
        "(a private CA); unset = the image's system CAs",
    )
    ca_bundle_key: str = Field(
        default="ca.crt",
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="key (PEM file) in that ConfigMap",
    )
    workflow_deadline_s: int = Field(
        default=6 * 3600, ge=600, description="activeDeadlineSeconds of the whole workflow"
    )
    ttl_after_completion_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="how long finished workflows stay visible"
    )

    def image(self, step: str) -> str:
        """The image reference of one step's build target."""
        return f"{self.image_registry.rstrip('/')}/{step}:{self.image_tag}"
