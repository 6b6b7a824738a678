/* WebSocket framing over wslay: see ws.h. */
