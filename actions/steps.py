"""What the API derives from steps: a selector's regex (shown as `selector_regex`) and the
`bytecode_error` of a step our engines cannot run."""
from typing import Optional

from queries.sql.actions import selector_regex
from queries.sql.regex import regex_problem


def selector_regex_of(selector: Optional[str]) -> Optional[str]:
    return selector_regex(selector) if isinstance(selector, str) else None


def steps_error(steps: list[dict]) -> Optional[str]:
    """Why an action's steps cannot be matched (a regex RE2 refuses, an unreadable selector), or None."""
    for step in steps or []:
        autocapture = step.get("event") == "$autocapture"
        patterns = []
        if step.get("url") and step.get("url_matching") == "regex":
            patterns.append(("url", step["url"]))
        if autocapture and step.get("href") is not None and step.get("href_matching") == "regex":
            patterns.append(("href", step["href"]))
        if autocapture and step.get("text") is not None and step.get("text_matching") == "regex":
            patterns.append(("text", step["text"]))
        if autocapture and step.get("tag_name") is not None:
            patterns.append(("tag_name", f"(^|;){step['tag_name']}(\\.|$|;|:)"))
        for field, pattern in patterns:
            problem = regex_problem(pattern)
            if problem:
                return f"Invalid regular expression in {field} {pattern!r}: {problem}"
        selector = step.get("selector")
        if autocapture and selector and selector.strip() and selector_regex(selector) is None:
            return f"Unsupported selector {selector!r}"
    return None
