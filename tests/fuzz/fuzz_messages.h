/*
 * fuzz_messages.h - the message types the payload fuzz targets decode.
 *
 * fuzz_pbjson and fuzz_protobuf take the message type from the first
 * input byte, so that one corpus covers every type: 'A' is the first
 * entry of the table below, 'B' the second, and so on (any byte works,
 * modulo the table's size). docs/fuzzing.md lists the letters.
 */
#ifndef JF_FUZZ_MESSAGES_H
#define JF_FUZZ_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct fuzz_message {
    const ProtobufCMessageDescriptor *descriptor;
    /* false when two different binary encodings of the type may print as
     * the same JSON (maps with repeated keys, NaN payloads), so that
     * binary -> JSON -> binary need not give back the same bytes */
    bool json_keeps_binary;
} fuzz_message_t;

/* The message type that the selector byte c names. */
const fuzz_message_t *fuzz_message_pick(uint8_t c);

#endif /* JF_FUZZ_MESSAGES_H */
