"""sentinelhub-py's configuration file and its profiles: the lowest layer of the API settings.

Read by `settings.api_settings` after flags and the SH_* variables (README, "Configuration"), so a user who set up
sentinelhub-py (`sentinelhub.config`) needs nothing more. The file is where sentinelhub-py's
`SHConfig.get_config_location()` says; its profile is the one SH_PROFILE names, else sentinelhub-py's
`default-profile`. Only the four keys below are read; the file is otherwise sentinelhub-py's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ReconcilerError

PROFILE_VARIABLE = "SH_PROFILE"
DEFAULT_PROFILE = "default-profile"  # sentinelhub-py's own
# The keys read from a profile, by the variable that outranks each. sentinelhub-py's other keys
# (instance_id, aws_*, download settings) and unknown ones are ignored: they are not ours to judge.
PROFILE_KEYS = {"SH_CLIENT_ID": "sh_client_id", "SH_CLIENT_SECRET": "sh_client_secret",
                "SH_BASE_URL": "sh_base_url", "SH_TOKEN_URL": "sh_token_url"}


class InvalidProfile(ReconcilerError):
    """sentinelhub-py's config file cannot be used: unreadable, not TOML, or without the named profile."""


@dataclass(frozen=True)
class Profile:
    """A profile of sentinelhub-py's config.toml: its non-empty values, keyed by the SH_* variable
    that outranks each. `path` is None when no file can be named; `found`: the file has the profile."""

    name: str
    path: Path | None
    found: bool = False
    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    def value(self, variable: str) -> tuple[str, str]:
        """The profile's value for `variable` ('' when it has none) and how a message names it."""
        return self.values.get(variable, ""), f"{PROFILE_KEYS[variable]} of profile {self.name!r} in {self.path}"

    def lacking(self, keys: str) -> str:
        """A phrase saying that this profile does not give `keys` (e.g. "sh_client_id or sh_client_secret")."""
        if self.path is None:
            return "no sentinelhub-py config.toml can be named (neither XDG_CONFIG_HOME nor HOME is set)"
        if not self.found:
            return f"{self.path} has no profile {self.name!r}"
        return f"profile {self.name!r} of {self.path} has no {keys}"


def config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where sentinelhub-py keeps config.toml: $XDG_CONFIG_HOME/sentinelhub/, else
    $HOME/.config/sentinelhub/; None when `environ` sets neither (an empty XDG_CONFIG_HOME is unset)."""
    home = environ.get("HOME", "")
    folder = environ.get("XDG_CONFIG_HOME", "") or (os.path.join(home, ".config") if home else "")
    return Path(folder, "sentinelhub", "config.toml") if folder else None


def read_profile(environ: Mapping[str, str] = os.environ) -> Profile:
    """The profile SH_PROFILE names, else `default-profile`, of sentinelhub-py's config.toml, read
    strictly: an unreadable or broken file, a named profile that is not there, or a value that is not
    a string is an InvalidProfile naming file and profile. A missing file or default profile gives
    nothing, as it gives sentinelhub-py nothing."""
    import tomllib

    named = environ.get(PROFILE_VARIABLE, "").strip()
    profile = Profile(named or DEFAULT_PROFILE, config_path(environ))
    where = f"{profile.path}, profile {profile.name!r}"
    try:
        document = tomllib.loads(profile.path.read_text(encoding="utf-8")) if profile.path else {}
    except FileNotFoundError:
        document = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InvalidProfile(f"{where}: not a readable sentinelhub-py config file ({reason})",
                             "fix the file (sentinelhub-py reads it too), or set XDG_CONFIG_HOME to another folder") from None
    table = document.get(profile.name)
    if table is None and named:
        raise InvalidProfile(f"{PROFILE_VARIABLE}={named}: {profile.lacking('')}",
                             f"profiles there: {', '.join(sorted(document)) or 'none'}; add a [{named}] table with "
                             f"sh_client_id and sh_client_secret to the file, or unset {PROFILE_VARIABLE}")
    if table is None:
        return profile
    if not isinstance(table, dict):
        raise InvalidProfile(f"{where}: a profile must be a table of settings", f'e.g. [{profile.name}] sh_client_id = "…"')
    values = {}
    for variable, key in PROFILE_KEYS.items():
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidProfile(f"{where}: {key} must be a string", f'e.g. {key} = "…"')
        if value and value.strip():
            values[variable] = value.strip()
    return Profile(profile.name, profile.path, True, values)


def client_secret(environ: Mapping[str, str] = os.environ) -> str:
    """The client secret the API settings use (SH_CLIENT_SECRET, else the profile's); '' when neither."""
    return environ.get("SH_CLIENT_SECRET", "").strip() or read_profile(environ).values.get("SH_CLIENT_SECRET", "")
