"""Typed configs: nested dataclasses loaded from YAML plus ``key=value`` overrides.

Every knob lives in one dataclass field with its default and its help text
(``cfg_field(default, "help")``); unknown or misspelled keys are errors that name the dotted
key and suggest the closest valid one, and values are type-checked on load. A number's range is
part of its field (``cfg_field(8, "...", ge=2)``), checked on load; derived values are
properties, and cross-field checks live in each dataclass's ``__post_init__``, so a bad config
fails before any model is loaded.
"""

from rl_reason.config.loader import (
    ConfigError,
    cfg_field,
    config_help,
    from_dict,
    load_config,
    parse_overrides,
    to_dict,
)

__all__ = ["ConfigError", "cfg_field", "config_help", "from_dict", "load_config", "parse_overrides", "to_dict"]
