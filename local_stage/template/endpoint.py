"""The SageMaker side of the stack: its one endpoint, the EndpointConfig's production variant, the
Model (container image, environment, artifact) and the inference component it may host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError
from local_stage.template.intrinsics import Resolver, find_asset, is_asset, of_type, refs, to_int
from local_stage.template.specs import (
    TARGET_TRACKING_SCALE_IN_S,
    ComponentSpec,
    EndpointSpec,
    ModelSpec,
    VariantSpec,
    flavour_from_image,
)


def read_endpoint(
    app_dir: Path,
    assets: dict[str, Any],
    resources: dict[str, Any],
    resolver: Resolver,
    stack_name: str,
) -> EndpointSpec:
    endpoints = of_type(resources, "AWS::SageMaker::Endpoint")
    if len(endpoints) != 1:
        raise LocalStageError(
            f"the stack has {len(endpoints)} AWS::SageMaker::Endpoint resources; the local stage "
            "runs stacks with exactly one"
        )
    ((ep_id, ep),) = endpoints.items()
    props = ep.get("Properties", {})
    name = props.get("EndpointName")
    if not isinstance(name, str):
        name = f"{stack_name}-endpoint"[:63]
    resolver.endpoint_names[ep_id] = name
    configs = of_type(resources, "AWS::SageMaker::EndpointConfig")
    config_ids = refs(props.get("EndpointConfigName")) & set(configs)
    if len(config_ids) != 1:
        raise LocalStageError(f"cannot tell which EndpointConfig endpoint {ep_id} uses")
    config = configs[config_ids.pop()]["Properties"]
    models = of_type(resources, "AWS::SageMaker::Model")
    components = {
        k: v.get("Properties", {})
        for k, v in of_type(resources, "AWS::SageMaker::InferenceComponent").items()
        if ep_id in refs(v.get("Properties", {}).get("EndpointName"))
    }
    variants = []
    for pv in config.get("ProductionVariants", []):
        if "ServerlessConfig" in pv:
            count = 1
        else:
            count = to_int(pv.get("InitialInstanceCount", 1), "InitialInstanceCount")
        component: ComponentSpec | None = None
        if "ModelName" in pv:
            model_ref = pv.get("ModelName")
        else:
            # A variant for inference components: the model is the component's.
            hosted = [c for c in components.values() if c.get("VariantName") == pv["VariantName"]]
            if len(hosted) != 1:
                raise LocalStageError(
                    f"variant {pv.get('VariantName')} names no model and hosts {len(hosted)} "
                    "inference components; the local stage runs exactly one per variant"
                )
            (ic,) = hosted
            model_ref = (ic.get("Specification") or {}).get("ModelName")
            component = _read_component(resources, ic, resolver)
        model_ids = refs(model_ref) & set(models)
        if len(model_ids) != 1:
            raise LocalStageError(f"cannot tell which Model variant {pv.get('VariantName')} uses")
        model_id = model_ids.pop()
        variants.append(
            VariantSpec(
                name=str(pv["VariantName"]),
                model=_read_model(app_dir, assets, model_id, models[model_id], resolver),
                initial_instance_count=count,
                instance_type=str(pv.get("InstanceType", "serverless")),
                inference_component=component,
            )
        )
    if len(variants) != 1:
        # The stack deploys one production variant (or one inference component on it); traffic
        # splitting between variants is not something it creates, so nor does this stage run it.
        raise LocalStageError(
            f"the EndpointConfig has {len(variants)} ProductionVariants; the local stage runs "
            "endpoints with exactly one, as the stack deploys them"
        )
    return EndpointSpec(logical_id=ep_id, name=name, variants=tuple(variants))


def _read_component(
    resources: dict[str, Any], props: dict[str, Any], resolver: Resolver
) -> ComponentSpec:
    name = props.get("InferenceComponentName")
    if not isinstance(name, str):
        raise LocalStageError(
            "the inference component has no literal InferenceComponentName; the local stage "
            "routes InvokeEndpoint's InferenceComponentName by it"
        )
    copies = to_int((props.get("RuntimeConfig") or {}).get("CopyCount", 1), "CopyCount")
    idle_s: float | None = None
    for target in of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget").values():
        t = target.get("Properties", {})
        if (
            resolver.resolve(t.get("ResourceId")) == f"inference-component/{name}"
            and to_int(t.get("MinCapacity", 1), "MinCapacity") == 0
        ):
            idle_s = TARGET_TRACKING_SCALE_IN_S
    return ComponentSpec(name=name, copy_count=copies, scale_to_zero_idle_s=idle_s)


def _read_model(
    app_dir: Path, assets: dict[str, Any], logical_id: str, model: dict[str, Any], r: Resolver
) -> ModelSpec:
    props = model.get("Properties", {})
    container = props.get("PrimaryContainer") or (props.get("Containers") or [None])[0]
    if not container:
        raise LocalStageError(f"Model {logical_id} has no PrimaryContainer")
    image = str(r.resolve(container.get("Image", "")))
    env = {k: str(r.resolve(v)) for k, v in (container.get("Environment") or {}).items()}
    url = container.get("ModelDataUrl")
    if url is None and "ModelDataSource" in container:
        url = container["ModelDataSource"].get("S3DataSource", {}).get("S3Uri")
    if url is None:
        raise LocalStageError(f"Model {logical_id} has no ModelDataUrl")
    rendered = json.dumps(url) if not isinstance(url, str) else url
    if isinstance(url, str) and url.startswith("s3://") and not is_asset(assets, url):
        return ModelSpec(
            logical_id=logical_id,
            image=image,
            flavour=flavour_from_image(image),
            environment=env,
            model_data_path=None,
            model_data_url=url,
        )
    path = find_asset(app_dir, assets, rendered, f"Model {logical_id}'s ModelDataUrl")
    if not path.exists():
        raise LocalStageError(f"the model artifact asset {path} is missing: run `make synth` again")
    return ModelSpec(
        logical_id=logical_id,
        image=image,
        flavour=flavour_from_image(image),
        environment=env,
        model_data_path=path,
    )
