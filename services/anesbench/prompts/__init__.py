"""Chat prompt templates: files with a system and a user message per language."""

from anesbench.prompts.template import DEFAULT_TEMPLATE, PromptTemplate, load_template

__all__ = ["DEFAULT_TEMPLATE", "PromptTemplate", "load_template"]
