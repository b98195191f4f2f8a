"""Block Kit validation with Slack's documented limits.

Slack rejects a whole message when one block breaks a limit, so a bot that renders incident details
(long alert descriptions, many responders, many buttons) must truncate/paginate itself. The fake enforces
the same limits so that bug shows up in tests instead of in a real incident. Error strings follow Slack's
``"<reason> [json-pointer:/blocks/0/text/text]"`` style.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

KNOWN_BLOCK_TYPES = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "input",
        "header",
        "rich_text",
        "file",
        "video",
        "markdown",
        "call",
        "table",
        "context_actions",
    }
)
INTERACTIVE_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "static_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "timepicker",
        "url_text_input",
        "workflow_button",
        "file_input",
        "feedback_buttons",
        "icon_button",
    }
)
TEXT_TYPES = ("plain_text", "mrkdwn")


class BlockValidator:
    """Walks one message's (or view's) blocks, collecting every violation instead of stopping early."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._action_ids: set[str] = set()
        self._block_ids: set[str] = set()

    # -- reporting -----------------------------------------------------------------------------------

    def fail(self, reason: str, pointer: str) -> None:
        """Record one violation at a JSON pointer."""
        self.errors.append(f"{reason} [json-pointer:{pointer}]")

    def check_length(self, value: Any, limit: int, pointer: str, *, required: bool = True) -> None:
        """Strings must be non-empty (when required) and at most ``limit`` characters."""
        if value is None:
            if required:
                self.fail("must provide a string", pointer)
            return
        if not isinstance(value, str):
            self.fail("must be a string", pointer)
        elif required and not value:
            self.fail("must be more than 0 characters", pointer)
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def check_count(self, items: Any, limit: int, pointer: str, *, minimum: int = 1) -> list[Any]:
        """Arrays must be lists with ``minimum``..``limit`` items; returns the list to iterate."""
        if not isinstance(items, list):
            self.fail("must provide an array", pointer)
            return []
        if len(items) > limit:
            self.fail(f"no more than {limit} items allowed", pointer)
        elif len(items) < minimum:
            self.fail(f"must provide at least {minimum} items", pointer)
        return items

    def check_text(self, obj: Any, limit: int, pointer: str, *, plain_only: bool = False) -> None:
        """A text composition object: ``{"type": "plain_text"|"mrkdwn", "text": ...}``."""
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        allowed = ("plain_text",) if plain_only else TEXT_TYPES
        if obj.get("type") not in allowed:
            self.fail(f"must be one of: {', '.join(allowed)}", f"{pointer}/type")
        self.check_length(obj.get("text"), limit, f"{pointer}/text")

    def check_unique(self, seen: set[str], value: Any, what: str, pointer: str) -> None:
        """block_id / action_id: at most 255 chars and unique within the message."""
        if value is None:
            return
        self.check_length(value, 255, pointer)
        if isinstance(value, str):
            if value in seen:
                self.fail(f"duplicate {what}: {value}", pointer)
            seen.add(value)

    # -- blocks --------------------------------------------------------------------------------------

    def validate(self, blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
        """Validate a whole blocks array and return the collected error strings."""
        for index, block in enumerate(self.check_count(blocks, max_blocks, pointer, minimum=0)):
            self.block(block, f"{pointer}/{index}")
        return self.errors

    def block(self, block: Any, pointer: str) -> None:
        """Dispatch one block to its type-specific rules."""
        if not isinstance(block, dict):
            self.fail("must provide an object", pointer)
            return
        kind = block.get("type")
        if not isinstance(kind, str):
            self.fail("must provide a string for type", f"{pointer}/type")
            return
        if kind not in KNOWN_BLOCK_TYPES:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.check_unique(self._block_ids, block.get("block_id"), "block_id", f"{pointer}/block_id")
        rule = BLOCK_RULES.get(kind)
        if rule is not None:
            rule(self, block, pointer)

    def section(self, block: dict[str, Any], pointer: str) -> None:
        """Section: text ≤3000 and/or fields (≤10, each ≤2000); optional accessory element."""
        if "text" not in block and "fields" not in block:
            self.fail("must provide either text or fields", pointer)
        if "text" in block:
            self.check_text(block["text"], 3000, f"{pointer}/text")
        if "fields" in block:
            for index, item in enumerate(self.check_count(block["fields"], 10, f"{pointer}/fields")):
                self.check_text(item, 2000, f"{pointer}/fields/{index}")
        if "accessory" in block:
            self.element(block["accessory"], f"{pointer}/accessory")

    def header(self, block: dict[str, Any], pointer: str) -> None:
        """Header: plain_text only, ≤150 characters."""
        self.check_text(block.get("text"), 150, f"{pointer}/text", plain_only=True)

    def context(self, block: dict[str, Any], pointer: str) -> None:
        """Context: 1..10 elements, each an image element or a text object."""
        for index, item in enumerate(self.check_count(block.get("elements"), 10, f"{pointer}/elements")):
            item_pointer = f"{pointer}/elements/{index}"
            if isinstance(item, dict) and item.get("type") == "image":
                self.check_length(item.get("alt_text"), 2000, f"{item_pointer}/alt_text")
            else:
                self.check_text(item, 3000, item_pointer)

    def actions(self, block: dict[str, Any], pointer: str) -> None:
        """Actions: 1..25 interactive elements."""
        for index, item in enumerate(self.check_count(block.get("elements"), 25, f"{pointer}/elements")):
            self.element(item, f"{pointer}/elements/{index}")

    def image(self, block: dict[str, Any], pointer: str) -> None:
        """Image block: alt_text ≤2000 and an image_url (≤3000) or slack_file."""
        self.check_length(block.get("alt_text"), 2000, f"{pointer}/alt_text")
        if "slack_file" not in block:
            self.check_length(block.get("image_url"), 3000, f"{pointer}/image_url")
        if "title" in block:
            self.check_text(block["title"], 2000, f"{pointer}/title", plain_only=True)

    def input(self, block: dict[str, Any], pointer: str) -> None:
        """Input block: plain_text label ≤2000 and exactly one input element."""
        self.check_text(block.get("label"), 2000, f"{pointer}/label", plain_only=True)
        if "hint" in block:
            self.check_text(block["hint"], 2000, f"{pointer}/hint", plain_only=True)
        if "element" not in block:
            self.fail("must provide an object", f"{pointer}/element")
        else:
            self.element(block["element"], f"{pointer}/element")

    def markdown(self, block: dict[str, Any], pointer: str) -> None:
        """Markdown block: text ≤12000 characters."""
        self.check_length(block.get("text"), 12000, f"{pointer}/text")

    def rich_text(self, block: dict[str, Any], pointer: str) -> None:
        """Rich text: only the top-level shape is checked (its inner grammar is large and not limit-bound)."""
        if not isinstance(block.get("elements"), list):
            self.fail("must provide an array", f"{pointer}/elements")

    # -- elements ------------------------------------------------------------------------------------

    def element(self, element: Any, pointer: str) -> None:
        """An interactive element (or image accessory): known type, action_id rules, button limits."""
        if not isinstance(element, dict):
            self.fail("must provide an object", pointer)
            return
        kind = element.get("type")
        if kind == "image":
            self.check_length(element.get("alt_text"), 2000, f"{pointer}/alt_text")
            return
        if kind not in INTERACTIVE_ELEMENTS:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.check_unique(self._action_ids, element.get("action_id"), "action_id", f"{pointer}/action_id")
        if "placeholder" in element:
            self.check_text(element["placeholder"], 150, f"{pointer}/placeholder", plain_only=True)
        if kind == "button":
            self.button(element, pointer)
        elif kind in ("static_select", "multi_static_select", "overflow", "checkboxes", "radio_buttons"):
            self.options(element, pointer, limit=5 if kind == "overflow" else 100)

    def button(self, element: dict[str, Any], pointer: str) -> None:
        """Button: plain_text ≤75, value ≤2000, url ≤3000, style primary|danger."""
        self.check_text(element.get("text"), 75, f"{pointer}/text", plain_only=True)
        self.check_length(element.get("value"), 2000, f"{pointer}/value", required=False)
        self.check_length(element.get("url"), 3000, f"{pointer}/url", required=False)
        if "style" in element and element["style"] not in ("primary", "danger"):
            self.fail("must be one of: primary, danger", f"{pointer}/style")

    def options(self, element: dict[str, Any], pointer: str, *, limit: int) -> None:
        """Option lists: bounded count, option text ≤75, value ≤150."""
        if "option_groups" in element and "options" not in element:
            return
        for index, option in enumerate(self.check_count(element.get("options"), limit, f"{pointer}/options")):
            option_pointer = f"{pointer}/options/{index}"
            if not isinstance(option, dict):
                self.fail("must provide an object", option_pointer)
                continue
            self.check_text(option.get("text"), 75, f"{option_pointer}/text")
            self.check_length(option.get("value"), 150, f"{option_pointer}/value")


BLOCK_RULES: dict[str, Callable[[BlockValidator, dict[str, Any], str], None]] = {
    "section": BlockValidator.section,
    "header": BlockValidator.header,
    "context": BlockValidator.context,
    "actions": BlockValidator.actions,
    "image": BlockValidator.image,
    "input": BlockValidator.input,
    "markdown": BlockValidator.markdown,
    "rich_text": BlockValidator.rich_text,
}


def validate_blocks(
    blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS, pointer: str = "/blocks"
) -> list[str]:
    """All Block Kit violations in ``blocks`` (empty list when valid)."""
    return BlockValidator().validate(blocks, max_blocks=max_blocks, pointer=pointer)


def validate_view(view: Any) -> list[str]:
    """Violations in a modal/home view: view-level fields plus its (up to 100) blocks."""
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    validator = BlockValidator()
    kind = view.get("type")
    if kind not in ("modal", "home"):
        validator.fail("must be one of: modal, home", "/view/type")
    if kind == "modal":
        validator.check_text(view.get("title"), 24, "/view/title", plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                validator.check_text(view[key], 24, f"/view/{key}", plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and view.get("submit") is None:
            validator.fail("must provide submit when input blocks are present", "/view/submit")
    validator.check_length(view.get("callback_id"), 255, "/view/callback_id", required=False)
    validator.check_length(view.get("external_id"), 255, "/view/external_id", required=False)
    validator.check_length(view.get("private_metadata"), 3000, "/view/private_metadata", required=False)
    validator.validate(view.get("blocks"), max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
    return validator.errors
