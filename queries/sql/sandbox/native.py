"""ClickHouse functions SQL insights run natively when the engine is ClickHouse.

HogQL is ClickHouse SQL, so on the ClickHouse engine (`Engine.runs_clickhouse_functions`) the
sandbox also accepts the ClickHouse functions below, each with a fixed signature: the compiler
converts every argument to the declared kind (so typing stays the sandbox's) and emits the
function by its ClickHouse name. The other engines refuse them with the usual 400.

Arrays exist here as values of kind `array:<element kind>` (strings or numbers): they can be
built (`splitByChar`, `[a, b]`), transformed with one-argument lambdas (`arrayMap(x -> ..., a)`),
tested (`has`, `arrayExists`), reduced (`length`, `arrayStringConcat`, `arrayElement`) and
selected. Not offered: `arrayJoin` (it multiplies rows outside the sandbox's row accounting) and
functions whose output size a number chooses (`repeat`, `leftPad`, `range`...: memory).

Argument kinds: `s` text, `n` number, `i` whole number, `a` an array, `e` a value of the array's
element kind, `f` a one-argument lambda over the array's elements, `*n` any count of numbers.
A result kind `@` is the array's own kind, `@e` its element kind, `@f` an array of the lambda's
result kind.
"""
from typing import Optional

from ..hogql import BOOL, NUMBER, STRING
from .values import INTEGER

ARRAY_PREFIX = "array:"


def array_of(kind: str) -> str:
    return ARRAY_PREFIX + kind


def element_of(kind: str) -> Optional[str]:
    return kind[len(ARRAY_PREFIX):] if kind.startswith(ARRAY_PREFIX) else None


# HogQL name (lower case) -> (ClickHouse name, argument kinds, result kind)
FUNCTIONS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # Text
    "lowerutf8": ("lowerUTF8", ("s",), STRING),
    "upperutf8": ("upperUTF8", ("s",), STRING),
    "reverse": ("reverse", ("s",), STRING),
    "lengthutf8": ("lengthUTF8", ("s",), INTEGER),
    "position": ("position", ("s", "s"), INTEGER),
    "positioncaseinsensitive": ("positionCaseInsensitive", ("s", "s"), INTEGER),
    "replaceone": ("replaceOne", ("s", "s", "s"), STRING),
    "base64encode": ("base64Encode", ("s",), STRING),
    "trybase64decode": ("tryBase64Decode", ("s",), STRING),
    # URLs
    "domain": ("domain", ("s",), STRING),
    "domainwithoutwww": ("domainWithoutWWW", ("s",), STRING),
    "topleveldomain": ("topLevelDomain", ("s",), STRING),
    "protocol": ("protocol", ("s",), STRING),
    "path": ("path", ("s",), STRING),
    "pathfull": ("pathFull", ("s",), STRING),
    "querystring": ("queryString", ("s",), STRING),
    "fragment": ("fragment", ("s",), STRING),
    "cutquerystring": ("cutQueryString", ("s",), STRING),
    "cutfragment": ("cutFragment", ("s",), STRING),
    "cutquerystringandfragment": ("cutQueryStringAndFragment", ("s",), STRING),
    "extracturlparameter": ("extractURLParameter", ("s", "s"), STRING),
    # Numbers
    "floor": ("floor", ("n",), NUMBER),
    "ceil": ("ceil", ("n",), NUMBER),
    "sqrt": ("sqrt", ("n",), NUMBER),
    "exp": ("exp", ("n",), NUMBER),
    "log": ("log", ("n",), NUMBER),
    "ln": ("log", ("n",), NUMBER),
    "log2": ("log2", ("n",), NUMBER),
    "log10": ("log10", ("n",), NUMBER),
    "pow": ("pow", ("n", "n"), NUMBER),
    "power": ("pow", ("n", "n"), NUMBER),
    "sign": ("sign", ("n",), INTEGER),
    "greatest": ("greatest", ("*n",), NUMBER),
    "least": ("least", ("*n",), NUMBER),
    # Arrays
    "splitbychar": ("splitByChar", ("s", "s"), array_of(STRING)),
    "splitbystring": ("splitByString", ("s", "s"), array_of(STRING)),
    "length": ("length", ("a",), INTEGER),
    "empty": ("empty", ("a",), BOOL),
    "notempty": ("notEmpty", ("a",), BOOL),
    "has": ("has", ("a", "e"), BOOL),
    "indexof": ("indexOf", ("a", "e"), INTEGER),
    "arrayelement": ("arrayElement", ("a", "i"), "@e"),
    "arrayslice": ("arraySlice", ("a", "i", "i"), "@"),
    "arraydistinct": ("arrayDistinct", ("a",), "@"),
    "arraysort": ("arraySort", ("a",), "@"),
    "arrayreverse": ("arrayReverse", ("a",), "@"),
    "arraystringconcat": ("arrayStringConcat", ("a", "s"), STRING),
    "arraymap": ("arrayMap", ("f", "a"), "@f"),
    "arrayfilter": ("arrayFilter", ("f", "a"), "@"),
    "arrayexists": ("arrayExists", ("f", "a"), BOOL),
    "arrayall": ("arrayAll", ("f", "a"), BOOL),
    "arraycount": ("arrayCount", ("f", "a"), INTEGER),
}

# Functions the sandbox also compiles for every engine: the native form applies to arrays only.
ARRAY_ONLY = {"length", "empty", "notempty"}

# Aggregates: HogQL name -> (ClickHouse name, argument count); numbers in, a number out.
AGGREGATES: dict[str, tuple[str, int]] = {
    "stddevpop": ("stddevPop", 1),
    "stddevsamp": ("stddevSamp", 1),
    "varpop": ("varPop", 1),
    "varsamp": ("varSamp", 1),
    "corr": ("corr", 2),
    "covarpop": ("covarPop", 2),
    "covarsamp": ("covarSamp", 2),
}
