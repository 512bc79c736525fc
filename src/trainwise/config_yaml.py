"""How a YAML config is read: yaml.SafeLoader (nothing is executed), with three changes that
make a YAML config mean what the same TOML config means.

1. A repeated key is an error: PyYAML kept the last `data:` block and dropped the first
   without a word, which switched the data source to the demo (audit s15 K4); TOML refuses it.
2. Only true/false are booleans (YAML 1.2, as in TOML): YAML 1.1 read `name: no` as False,
   refused as "Input should be a valid string" about a False the user never wrote (K13).
   A bool key still takes yes/no/on/off: the validator reads those words.
3. 1e-3 is a number (YAML 1.2, as in TOML): YAML 1.1 wants a dot (1.0e-3), so `lr: 1e-3` was
   the text "1e-3" (K7).
4. Integers are YAML 1.2 / TOML's: no sexagesimal (YAML 1.1 read `gap: 1:30` as 90, and
   `1:30.5` as the float 90.5) and no leading-zero octal (`target: 010` was the column 8);
   both stay text and meet the key's own check. 0x1F, 0o17, 0b101 and 1_000 are TOML's too.
"""

from __future__ import annotations

import re

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

BOOL = "tag:yaml.org,2002:bool"
FLOAT = "tag:yaml.org,2002:float"
INT = "tag:yaml.org,2002:int"
_REPLACED = (BOOL, FLOAT, INT)  # SafeLoader's YAML 1.1 forms of these, replaced below


class ConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a repeated key and reads booleans and floats as YAML 1.2."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} twice (first {seen[key]}): YAML would keep only "
                    "the last one. Merge them into one", key_node.start_mark)
            seen[key] = f"line {key_node.start_mark.line + 1}"
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """Python's own reading of TOML's forms (0x, 0o, 0b, 1_000): SafeLoader's took a
        leading 0 as octal and refused 0o17."""
        return int(self.construct_scalar(node), 0)


ConfigLoader.add_constructor(INT, ConfigLoader.construct_yaml_int)
ConfigLoader.yaml_implicit_resolvers = {  # a copy: SafeLoader's own stay YAML 1.1
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver(BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
ConfigLoader.add_implicit_resolver(INT, re.compile(
    r"^(?:[-+]?(?:0|[1-9](?:_?[0-9])*)|0x[0-9a-fA-F](?:_?[0-9a-fA-F])*|0o[0-7](?:_?[0-7])*"
    r"|0b[01](?:_?[01])*)$"), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(FLOAT, re.compile(  # 1.1's forms less sexagesimal, and 1e-3
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9]+[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
