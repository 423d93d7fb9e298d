"""CloudFormation as the local stage resolves it: intrinsic functions with local values, the
references a property makes, the cloud assembly's file assets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError


class Resolver:
    def __init__(self, template: dict[str, Any], stack_name: str, region: str, account: str):
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.endpoint_names: dict[str, str] = {}
        self.unresolved: list[str] = []

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/"
            f"{self.stack_name}/local",
            "AWS::NoValue": "",
        }.get(name)

    def ref(self, name: str) -> str:
        value = self.pseudo(name)
        if value is not None:
            return value
        if name in self.endpoint_names:
            return self.endpoint_names[name]
        self.unresolved.append(f"Ref {name}")
        return f"local-{name}"

    def get_att(self, name: str, attr: str) -> str:
        if name in self.endpoint_names and attr == "EndpointName":
            return self.endpoint_names[name]
        self.unresolved.append(f"GetAtt {name}.{attr}")
        return f"local-{name}-{attr}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attr)
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(self.resolve(p)) for p in self.resolve(parts))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(match: re.Match[str]) -> str:
                expr = match.group(1)
                if expr in variables:
                    return str(self.resolve(variables[expr]))
                if "." in expr and not expr.startswith("AWS::"):
                    name, attr = expr.split(".", 1)
                    return self.get_att(name, attr)
                return self.ref(expr)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: self.resolve(v) for k, v in value.items()}


def of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v.get("Type") == cfn_type}


def refs(value: Any) -> set[str]:
    """Logical IDs a property value refers to (Ref, GetAtt, ${X} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".", 1)[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found.update(m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if not isinstance(v, str):
                    found.update(refs(v[1]))
            else:
                found.update(refs(v))
    elif isinstance(value, list):
        for v in value:
            found.update(refs(v))
    return found


def is_asset(assets: dict[str, Any], rendered: str) -> bool:
    for asset_hash, entry in assets.get("files", {}).items():
        keys = {d.get("objectKey", "") for d in entry.get("destinations", {}).values()}
        keys.add(asset_hash)
        if any(k and k in rendered for k in keys):
            return True
    return False


def find_asset(app_dir: Path, assets: dict[str, Any], rendered: str, what: str) -> Path:
    """The cdk.out path of the file asset whose object key appears in ``rendered``."""
    for asset_hash, entry in assets.get("files", {}).items():
        keys = {d.get("objectKey", "") for d in entry.get("destinations", {}).values()}
        keys.add(asset_hash)
        if any(k and k in rendered for k in keys):
            return app_dir / entry["source"]["path"]
    raise LocalStageError(
        f"{what} ({rendered}) is not an asset of this cloud assembly: the local stage serves "
        "artifacts that `cdk synth` packaged from artifacts/<model>/model.tar.gz, not existing "
        "S3 objects (synthesize without model_data_url)"
    )


def to_int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LocalStageError(f"{what} is {value!r}, not a number") from None
