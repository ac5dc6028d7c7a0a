"""Model config queries and mutations, and per-user compaction thresholds."""

from __future__ import annotations

from typing import Any, cast

import strawberry

from resolvers import model_configs
from schema.info import Info
from schema.provider import ModelConfig, given

_PRICE_HELP = (
    "USD per million tokens, 0 .. 1000000 (kept to the micro-dollar). Null or omitted: "
    "not priced — its messages cost nothing known, and with spend limits on, limited "
    "users cannot use the model until input and output prices are set."
)
_CACHE_PRICE_HELP = (
    "USD per million tokens, 0 .. 1000000; null or omitted: the input price applies."
)


@strawberry.input(
    description="The first enabled model config becomes the default; isDefault moves it."
)
class CreateModelConfigInput:
    provider_id: strawberry.ID
    model: str
    display_name: str | None = strawberry.field(default=None, description="Defaults to model.")
    enabled: bool = True
    is_default: bool = False
    context_limit: int = strawberry.field(description="Tokens, > 0.")
    compression_threshold: int = strawberry.field(default=70, description="Percent, 0..100.")
    max_output_tokens: int | None = None
    input_price_per_million_tokens: float | None = strawberry.field(
        default=None, description=_PRICE_HELP
    )
    output_price_per_million_tokens: float | None = strawberry.field(
        default=None, description=_PRICE_HELP
    )
    cache_read_price_per_million_tokens: float | None = strawberry.field(
        default=None, description=_CACHE_PRICE_HELP
    )
    cache_write_price_per_million_tokens: float | None = strawberry.field(
        default=None, description=_CACHE_PRICE_HELP
    )


@strawberry.input(
    description="Only the fields given change. isDefault: true moves the default here; "
    "disabling the default promotes another enabled config."
)
class UpdateModelConfigInput:
    id: strawberry.ID
    model: str | None = strawberry.UNSET
    display_name: str | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    is_default: bool | None = strawberry.UNSET
    context_limit: int | None = strawberry.UNSET
    compression_threshold: int | None = strawberry.UNSET
    max_output_tokens: int | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (provider default)."
    )
    input_price_per_million_tokens: float | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (the model becomes unpriced)."
    )
    output_price_per_million_tokens: float | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (the model becomes unpriced)."
    )
    cache_read_price_per_million_tokens: float | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (the input price applies)."
    )
    cache_write_price_per_million_tokens: float | None = strawberry.field(
        default=strawberry.UNSET, description="null clears it (the input price applies)."
    )


@strawberry.input
class DeleteModelConfigInput:
    id: strawberry.ID


@strawberry.type
class ModelConfigPayload:
    model_config: ModelConfig
    warnings: list[str]


@strawberry.type
class DeleteModelConfigPayload:
    deleted_id: strawberry.ID
    warnings: list[str]


@strawberry.type(description="The viewer's compaction threshold override for one model.")
class CompactionThreshold:
    model_config: ModelConfig
    percent: int | None = strawberry.field(description="The override; null when cleared.")
    effective_percent: int = strawberry.field(
        description="What applies: the override, else the model's compressionThreshold."
    )


@strawberry.input
class SetCompactionThresholdInput:
    model_config_id: strawberry.ID
    percent: int = strawberry.field(description="0..100.")


@strawberry.input
class ClearCompactionThresholdInput:
    model_config_id: strawberry.ID


@strawberry.type
class CompactionThresholdPayload:
    threshold: CompactionThreshold
    warnings: list[str]


_FIELDS = (
    "model",
    "display_name",
    "enabled",
    "is_default",
    "context_limit",
    "compression_threshold",
    "max_output_tokens",
    *model_configs.PRICES,
)


def _row(value: Any) -> Any:
    return value


@strawberry.type
class ModelConfigQueries:
    @strawberry.field(
        description="Model configs, the default first: admins see all (enabled or not), "
        "everyone else the enabled ones."
    )
    async def model_configs(self, info: Info) -> list[ModelConfig]:
        return cast(list[ModelConfig], await model_configs.model_configs(info.context))

    @strawberry.field(description="The viewer's compaction threshold overrides.")
    async def compaction_thresholds(self, info: Info) -> list[CompactionThreshold]:
        return cast(
            list[CompactionThreshold], await model_configs.compaction_thresholds(info.context)
        )


@strawberry.type
class ModelConfigMutations:
    @strawberry.mutation(description="Add a model config. Needs MANAGE_PROVIDERS.")
    async def create_model_config(
        self, info: Info, input: CreateModelConfigInput
    ) -> ModelConfigPayload:
        result = await model_configs.create_model_config(
            info.context, given(input, ("provider_id", *_FIELDS))
        )
        return ModelConfigPayload(model_config=_row(result.model_config), warnings=result.warnings)

    @strawberry.mutation(description="Change a model config. Needs MANAGE_PROVIDERS.")
    async def update_model_config(
        self, info: Info, input: UpdateModelConfigInput
    ) -> ModelConfigPayload:
        result = await model_configs.update_model_config(
            info.context, input.id, given(input, _FIELDS)
        )
        return ModelConfigPayload(model_config=_row(result.model_config), warnings=result.warnings)

    @strawberry.mutation(
        description="Soft-delete a model config (history keeps it); the default moves to "
        "another enabled one. Needs MANAGE_PROVIDERS."
    )
    async def delete_model_config(
        self, info: Info, input: DeleteModelConfigInput
    ) -> DeleteModelConfigPayload:
        warnings = await model_configs.delete_model_config(info.context, input.id)
        return DeleteModelConfigPayload(deleted_id=input.id, warnings=warnings)

    @strawberry.mutation(
        description="Your own compaction threshold (0..100) for an enabled model config."
    )
    async def set_compaction_threshold(
        self, info: Info, input: SetCompactionThresholdInput
    ) -> CompactionThresholdPayload:
        row = await model_configs.set_compaction_threshold(
            info.context, input.model_config_id, input.percent
        )
        return CompactionThresholdPayload(threshold=_row(row), warnings=[])

    @strawberry.mutation(description="Go back to the model's own compaction threshold.")
    async def clear_compaction_threshold(
        self, info: Info, input: ClearCompactionThresholdInput
    ) -> CompactionThresholdPayload:
        row = await model_configs.clear_compaction_threshold(info.context, input.model_config_id)
        return CompactionThresholdPayload(threshold=_row(row), warnings=[])
