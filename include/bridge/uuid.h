/* Random (version 4) UUIDs: the id of a command that has none. Thread: any. */
#ifndef SB_BRIDGE_UUID_H
#define SB_BRIDGE_UUID_H

#define SB_UUID_LEN 36

/* Writes a UUID and a NUL into out (at least SB_UUID_LEN + 1 bytes). */
void sb_uuid_v4(char out[SB_UUID_LEN + 1]);

#endif
