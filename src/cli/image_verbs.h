/* The image subcommands, one file each. */
#pragma once

int image_alias(int argc, char **argv);
int image_build(int argc, char **argv);
int image_delete(int argc, char **argv);
int image_export(int argc, char **argv);
int image_import(int argc, char **argv);
int image_info(int argc, char **argv);
int image_list(int argc, char **argv);
