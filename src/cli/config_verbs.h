/* The subcommands of `ferry config` that live in their own files. */
#pragma once

/* config_trust.c: ferry config trust add|list|list-tokens|revoke-token|show|remove. */
int config_trust(int argc, char **argv);
