/* The declared table of configuration keys, and their validation. */
