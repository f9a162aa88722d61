"""How the templates page names the nodes that use a model."""

import re

from django import template

register = template.Library()

# The scanner labels a node "<id> <type>", inside subgraphs "subgraph <id> > <id> <type>".
_NODE = re.compile(r"(^|> )(\d+) (\S+)")
_SUBGRAPH = re.compile(r"\bsubgraph (\d+)")


@register.filter
def node_names(labels):
    """ "4 LoraLoaderModelOnly" reads as four loaders: say "LoraLoaderModelOnly #4" instead."""
    return ", ".join(
        _SUBGRAPH.sub(r"subgraph #\1", _NODE.sub(r"\1\3 #\2", label)).replace(" > ", " › ") for label in labels
    )
