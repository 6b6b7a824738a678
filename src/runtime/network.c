/* Host networking: see network.h. */
