/* Profiles: see profiles.h. */
