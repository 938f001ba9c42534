"""For the tool-calling tests: a tool, conversations that use it, chat templates that know
tools (in short)."""

from __future__ import annotations

import json
from typing import Any

# Llama 3.1's template, in short (3.2 and 3.3 write tools and calls the same way): the tools
# and the instructions go into the first user message, a call is bare JSON with "parameters",
# a tool's answer comes from the "ipython" role, and a turn with two calls is refused.
LLAMA3_TOOLS_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if tools %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\nEnvironment: ipython\\n\\n<|eot_id|>' }}"
    "{%- endif %}"
    "{%- set first_user = namespace(done=false) %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' and tools and not first_user.done %}"
    "{%- set first_user.done = true %}"
    "{{- '<|start_header_id|>user<|end_header_id|>\\n\\n' }}"
    "{{- 'Given the following functions, please respond with a JSON for a function call with"
    " its proper arguments that best answers the given prompt.\\n\\n' }}"
    '{{- \'Respond in the format {"name": function name, "parameters": dictionary of argument'
    " name and its value}.Do not use variables.\\n\\n' }}"
    "{%- for tool in tools %}{{- tool | tojson(indent=4) }}{{- '\\n\\n' }}{%- endfor %}"
    "{{- message.content + '<|eot_id|>' }}"
    "{%- elif message.role == 'assistant' and message.tool_calls %}"
    "{%- if message.tool_calls | length != 1 %}"
    "{{- raise_exception('This model only supports single tool-calls at once!') }}"
    "{%- endif %}"
    "{%- set call = message.tool_calls[0].function %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{{- '{\"name\": \"' + call.name + '\", ' }}"
    "{{- '\"parameters\": ' + (call.arguments | tojson) + '}<|eot_id|>' }}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' + message.content + '<|eot_id|>' }}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content"
    " + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def weather_turns(earlier: list[str], city: str, *, answered: bool = False) -> list[dict[str, Any]]:
    """A question about each ``earlier`` city that the assistant answered with a call (and,
    ``answered``, the tool's result and a sentence), then the question about ``city``: shown
    its own earlier calls, a small model calls the tool by itself (``tool_choice`` auto)."""
    turns: list[dict[str, Any]] = []
    for number, place in enumerate(earlier):
        call = {
            "id": f"call_{number}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": place})},
        }
        turns += [
            {"role": "user", "content": f"Weather in {place}?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
        if answered:
            turns += [
                {"role": "tool", "tool_call_id": f"call_{number}", "content": "sunny, 21 C"},
                {"role": "assistant", "content": f"It is sunny in {place}."},
            ]
    return [*turns, {"role": "user", "content": f"Weather in {city}?"}]


# Qwen 2.5's template, in short: it knows tools, so it gets them (and writes the instructions).
TOOLS_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\nYou may call one or more functions to assist with the user"
    " query.\\n\\nYou are provided with function signatures within <tools></tools> XML"
    " tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name"
    ' and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{"name":'
    ' <function-name>, "arguments": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}'
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' and message.tool_calls %}"
    "{{- '<|im_start|>assistant' }}"
    "{%- for call in message.tool_calls %}"
    '{{- \'\\n<tool_call>\\n{"name": "\' + call.function.name + \'", "arguments": \' }}'
    "{{- (call.function.arguments | tojson) + '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content"
    " + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
