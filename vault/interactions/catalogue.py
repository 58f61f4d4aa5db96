"""The service catalogue (policies/services.yaml) and coarse areas (policies/areas.yaml).

Services say who receives an interaction, what extra questions it asks (in Open311's
service-definition shape, so the Open311 face translates them one to one), whether its location
identifies a home, and its service levels. Areas map a point to the coarse area code that is the
only location kept in clear. Both are policy data: loaded once, validated, never edited at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vault.errors import ConfigurationError
from vault.settings import POLICIES_DIR

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
MAX_ATTRIBUTE_CHARS = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttributeValue(_Strict):
    """One choice of a list question."""

    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class Attribute(_Strict):
    """An extra question of a service (Open311 service definition ``attributes``)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool = False
    description: str = Field(min_length=1, max_length=300)
    order: int = 1
    values: tuple[AttributeValue, ...] = ()

    def check(self, value: str | list[str]) -> str | None:
        """Why ``value`` does not answer this question, or None."""
        values = value if isinstance(value, list) else [value]
        if self.datatype != "multivaluelist" and isinstance(value, list):
            return "one value expected"
        if any(len(v) > MAX_ATTRIBUTE_CHARS for v in values):
            return f"at most {MAX_ATTRIBUTE_CHARS} characters"
        if self.datatype in ("singlevaluelist", "multivaluelist"):
            keys = {v.key for v in self.values}
            if any(v not in keys for v in values):
                return "not one of the listed values"
        if self.datatype == "number":
            try:
                float(values[0])
            except ValueError:
                return "a number expected"
        return None


class Service(_Strict):
    """A service citizens can ask for or comment on."""

    code: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    agency: str = Field(min_length=1, max_length=64)
    group: str = Field(min_length=1, max_length=100)
    keywords: tuple[str, ...] = ()
    description: str = ""
    location: Literal["required", "optional", "none"] = "optional"
    home: bool = False
    ack_hours: int = Field(ge=1, le=24 * 365)
    resolve_hours: int = Field(ge=1, le=24 * 365)
    attributes: tuple[Attribute, ...] = ()

    @model_validator(mode="after")
    def _levels(self) -> Service:
        if self.resolve_hours < self.ack_hours:
            raise ValueError("resolve_hours must not be shorter than ack_hours")
        return self

    @property
    def ack_target_s(self) -> int:
        """Seconds after creation by which an item must be acknowledged."""
        return self.ack_hours * 3600

    @property
    def resolve_target_s(self) -> int:
        """Seconds after creation by which an item must be resolved."""
        return self.resolve_hours * 3600


class AgencyUnits(_Strict):
    """The units an agency assigns its items to."""

    units: tuple[str, ...] = ()


class _ServicesFile(_Strict):
    agencies: dict[str, AgencyUnits]
    services: tuple[Service, ...]


class Area(_Strict):
    """A coarse area: a box [south, west, north, east] in WGS84 degrees."""

    code: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    name: str = Field(min_length=1, max_length=100)
    box: tuple[float, float, float, float]

    def holds(self, lat: float, lon: float) -> bool:
        """Whether the point is inside (south and west edges inclusive)."""
        south, west, north, east = self.box
        return south <= lat < north and west <= lon < east


class _AreasFile(_Strict):
    areas: tuple[Area, ...]


def _load(path: Path, model: type[BaseModel]) -> Any:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return model.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"{path.name}: {exc}") from None


@dataclass(frozen=True)
class ServiceCatalogue:
    """Services by code, units by agency, areas in order."""

    services: Mapping[str, Service]
    units: Mapping[str, tuple[str, ...]]
    areas: Sequence[Area]

    @classmethod
    def load(
        cls, services_path: Path = POLICIES_DIR / "services.yaml", areas_path: Path = POLICIES_DIR / "areas.yaml"
    ) -> ServiceCatalogue:
        """Load and check both files; ConfigurationError names what is wrong."""
        services: _ServicesFile = _load(services_path, _ServicesFile)
        areas: _AreasFile = _load(areas_path, _AreasFile)
        by_code = {s.code: s for s in services.services}
        if len(by_code) != len(services.services):
            raise ConfigurationError(f"{services_path.name}: a service code is listed twice")
        if missing := sorted({s.agency for s in services.services} - set(services.agencies)):
            raise ConfigurationError(f"{services_path.name}: agencies without units: {', '.join(missing)}")
        units = {code: a.units for code, a in services.agencies.items()}
        return cls(by_code, units, areas.areas)

    def area_of(self, lat: float, lon: float) -> str | None:
        """The code of the first area holding the point, or None."""
        return next((a.code for a in self.areas if a.holds(lat, lon)), None)

    def area_codes(self) -> list[str]:
        """Every area code, in file order."""
        return [a.code for a in self.areas]

    def of_agency(self, agency: str) -> list[Service]:
        """The services an agency receives."""
        return [s for s in self.services.values() if s.agency == agency]
