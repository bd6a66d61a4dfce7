/* Unit tests of adapters/webhook/signature.c: the test vectors of facts 8.5, rows signed by the
 * official Node SDK (pinned here so the cross-check needs no network), and the bad rows: edited
 * bodies, missing headers, wrong encodings, malformed and stale timestamps, wrong secrets. */
#include <openssl/evp.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "adapters/signature.h"
#include "check.h"

/* Vector A (facts 8.5, from the sinch-sdk-python unit test): 322 bytes. */
#define BODY_A                                                                                     \
    "{\"app_id\":\"01EB37HMH1M6SV18BSNS3G135H\",\"accepted_time\":\"2020-11-17T15:09:11.659Z\","   \
    "\"project_id\":\"c36f3d3d-1513-2edd-ae42-11995557ff61\",\"message_delivery_report\":{"        \
    "\"message_id\":\"01EQBC1A3BEK731GY4YXEN0C2R\",\"conversation_id\":"                           \
    "\"01EPYATA64TMNZ1FV02JKF12JF\",\"status\":\"QUEUED_ON_CHANNEL\",\"contact_id\":"              \
    "\"01EXA07N79THJ20WSN6AS30TMW\"}}"

/* Vector B (facts 8.5, the MESSAGE_INBOUND example of 7.3, compact): 539 bytes. */
#define BODY_B                                                                                     \
    "{\"app_id\":\"01J0M9S346Q3D25VT4F5V37E3S\",\"accepted_time\":\"2024-06-15T14:23:45.123Z\","   \
    "\"event_time\":\"2024-06-15T14:23:44Z\",\"project_id\":\"3f2a9c1e-7b4d-4e8a-9c2f-"            \
    "5d6e7f8a9b0c\",\"message\":{\"id\":\"01J0QKFBF5KZNWJ47TAN9ZT24M\",\"direction\":\"TO_APP\","  \
    "\"contact_message\":{\"text_message\":{\"text\":\"Snooze 10 min\"}},\"channel_identity\":{"   \
    "\"channel\":\"WHATSAPP\",\"identity\":\"46701234567\",\"app_id\":\"\"},\"conversation_id\":"  \
    "\"\",\"contact_id\":\"\",\"metadata\":\"\",\"accept_time\":\"2024-06-15T14:23:45.101Z\","     \
    "\"processing_mode\":\"DISPATCH\"},\"message_metadata\":\"\",\"correlation_id\":\"\"}"
#define BODY_B_SHA256 "247d0cfe8595717147c1e4415f13a188259f7fa99e55b280bd5cf5b9e84a9a3c"

/* Vector B pretty-printed with a 2-space indent, no trailing newline (JSON.stringify(o, null, 2)
 * and Python's json.dumps(o, indent=2) agree on it): 684 bytes. */
#define BODY_B_PRETTY                                                                              \
    "{\n"                                                                                          \
    "  \"app_id\": \"01J0M9S346Q3D25VT4F5V37E3S\",\n"                                              \
    "  \"accepted_time\": \"2024-06-15T14:23:45.123Z\",\n"                                         \
    "  \"event_time\": \"2024-06-15T14:23:44Z\",\n"                                                \
    "  \"project_id\": \"3f2a9c1e-7b4d-4e8a-9c2f-5d6e7f8a9b0c\",\n"                                \
    "  \"message\": {\n"                                                                           \
    "    \"id\": \"01J0QKFBF5KZNWJ47TAN9ZT24M\",\n"                                                \
    "    \"direction\": \"TO_APP\",\n"                                                             \
    "    \"contact_message\": {\n"                                                                 \
    "      \"text_message\": {\n"                                                                  \
    "        \"text\": \"Snooze 10 min\"\n"                                                        \
    "      }\n"                                                                                    \
    "    },\n"                                                                                     \
    "    \"channel_identity\": {\n"                                                                \
    "      \"channel\": \"WHATSAPP\",\n"                                                           \
    "      \"identity\": \"46701234567\",\n"                                                       \
    "      \"app_id\": \"\"\n"                                                                     \
    "    },\n"                                                                                     \
    "    \"conversation_id\": \"\",\n"                                                             \
    "    \"contact_id\": \"\",\n"                                                                  \
    "    \"metadata\": \"\",\n"                                                                    \
    "    \"accept_time\": \"2024-06-15T14:23:45.101Z\",\n"                                         \
    "    \"processing_mode\": \"DISPATCH\"\n"                                                      \
    "  },\n"                                                                                       \
    "  \"message_metadata\": \"\",\n"                                                              \
    "  \"correlation_id\": \"\"\n"                                                                 \
    "}"

#define SECRET_B "my-webhook-secret"
#define NONCE_B  "01J09EE0ZBGJ09TQM83XSSSS6Y"
#define TS_B     "1718461425"
#define NOW_B    1718461425
#define SIG_B    "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo="
#define SKEW     300 /* BRIDGE_WEBHOOK_MAX_SKEW's default */

#define SECRET_C    "bridge-secret"
#define BODY_C      "{\"ping\":true}"
#define SIG_C       "lF8LRkFBsoCUZ2jgEJJLaZBcXvYE72vb98l+8pNZeMo="
#define SIG_C_EMPTY "pJkdlyqC6PjSRTBlfKi7KlnE7q4ynZ+sBkFsj/zJjps="

/* Row S4 below: a secret that happens to be valid base64 (of "sinch-bridge-secret"). */
#define SECRET_S4 "c2luY2gtYnJpZGdlLXNlY3JldA=="
#define NONCE_S4  "01JDXCHECK00000000000000S4"
#define TS_S4     "1764345603"
#define NOW_S4    1764345603
#define SIG_S4    "qrBEC5emGi67uyJdTDmLUk1OuP+JXQzuYwgdB2b4XoI="

#define BODY_MAX 1024

struct vec {
    const char *name;
    const char *secret;
    const char *nonce;
    const char *timestamp;
    const char *body;     /* the body as text, or NULL when body_hex holds it */
    const char *body_hex; /* the body's exact bytes in hex (non-ASCII, NUL), or NULL */
    size_t body_len;      /* expected length in bytes, a guard against mistyped bodies */
    const char *sig;      /* the expected x-sinch-webhook-signature */
};

/* Facts 8.5, vectors A to D, and the two edited bodies of vector B, whose own signatures the
 * doc gives too (they must not pass with B's: see the bad rows). */
static const struct vec doc_vectors[] = {
    {"A", "foo_secret1234", "01FJA8B4A7BM43YGWSG9GBV067", "1634579353", BODY_A, NULL, 322,
     "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="},
    {"B", SECRET_B, NONCE_B, TS_B, BODY_B, NULL, 539, SIG_B},
    {"B with a trailing newline", SECRET_B, NONCE_B, TS_B, BODY_B "\n", NULL, 540,
     "Dm71+NiwMxY/NNmR3u/AOQWEacuozLayJYH0pPgiNuQ="},
    {"B pretty-printed", SECRET_B, NONCE_B, TS_B, BODY_B_PRETTY, NULL, 684,
     "C46TKzQzbrc3K1woSuGLbllhJh6dNFuJTsPZnGe6Pd0="},
    {"C", SECRET_C, "abc123", "1700000000", BODY_C, NULL, 13, SIG_C},
    {"C, empty body", SECRET_C, "abc123", "1700000000", "", NULL, 0, SIG_C_EMPTY},
    {"D (non-ASCII)", SECRET_C, "abc124", "1700000001", NULL,
     "7b2274657874223a2248656a2070c3a52064696720f09f918b227d", 27,
     "1FWDc2eHAfJE6KZTUJ+1OCCq6O0RKIA9K5DgYKjmskg="},
};

/* Cross-check with the official Node SDK, done once by hand (November 2026) and pinned here:
 * npm install @sinch/sdk-core@1.4.0, which pulled @sinch/conversation@1.4.0 and
 * @sinch/sdk-client@1.5.0 (sdk-core 1.5.0 could not be installed: its pinned
 * @sinch/conversation@1.5.0 was missing from the registry). Each signature below is
 *   calculateWebhookSignature(`${body}.${nonce}.${timestamp}`, secret)
 * (sdk-client dist/utils/authorization.helper.js: createHmac('sha256', secret), base64), and
 *   new ConversationCallbackWebhooks(secret).validateAuthenticationHeader(headers, body, path,
 *   'POST')
 * (which calls validateWebhookSignature) returned true for it; it also returned true for the
 * signature our sb_signature_compute() gave, for these rows and for every row of doc_vectors,
 * and the SDK computed the doc's signature for each of those. The SDK was handed the body as a
 * JS string; the bytes are its UTF-8. The inputs, as JS literals:
 *   S1 body '{"text":"Gr\u00fc\u00dfe fr\u00e5n Malm\u00f6, \u00e7a va? \u041f\u0440\u0438\u0432
 *           \u0435\u0442 \u4f60\u597d \ud83c\uddf8\ud83c\uddea\ud83d\udc4d\ud83c\udffd
 *           e\u0301"}' (one line; Latin-1, Cyrillic, CJK, flag and skin-tone emoji, a
 *           combining accent)
 *   S2 body ''
 *   S3 secret 'hemlig-nyckel-\u00e5\u00e4\u00f6-\ud83d\udd11', body '{"ping":true}'
 *   S4 secret 'c2luY2gtYnJpZGdlLXNlY3JldA==' (valid base64), body '{"ping":true}'
 *   S5 body '{"a":"x"}\r\n\t\u0000end' (CR LF, tab and a NUL byte)
 *   S6 body '{"reason":"\\u00e5 \\"q\\" a/b+c=="}' (JSON escapes, kept as backslashes)
 * secret 'sdk-xcheck-secret' unless given, nonce '01JDXCHECK00000000000000S<n>', timestamp
 * 1764345600 + n - 1. */
static const struct vec sdk_rows[] = {
    {"SDK S1 non-ASCII body", "sdk-xcheck-secret", "01JDXCHECK00000000000000S1", "1764345600", NULL,
     "7b2274657874223a224772c3bcc39f65206672c3a56e204d616c6dc3b62c20c3a7612076613f20d09fd180d0b8"
     "d0b2d0b5d18220e4bda0e5a5bd20f09f87b8f09f87aaf09f918df09f8fbd2065cc81227d",
     81, "9z0hetvgMETIb8XjRNNEbAhJAVmGbzXlIFkYbYLLYo0="},
    {"SDK S2 empty body", "sdk-xcheck-secret", "01JDXCHECK00000000000000S2", "1764345601", "", NULL,
     0, "LXvWz5B3dKJpcE3TV93o4y0l2A5YmgBJbgvL/91hIUE="},
    {"SDK S3 non-ASCII secret", "hemlig-nyckel-\xc3\xa5\xc3\xa4\xc3\xb6-\xf0\x9f\x94\x91",
     "01JDXCHECK00000000000000S3", "1764345602", BODY_C, NULL, 13,
     "MmwLSRuUbLKkvTfoFv2qSZj50XUYObAvnDZ3RiQ81/c="},
    {"SDK S4 base64-looking secret", SECRET_S4, NONCE_S4, TS_S4, BODY_C, NULL, 13, SIG_S4},
    {"SDK S5 CR LF, tab, NUL", "sdk-xcheck-secret", "01JDXCHECK00000000000000S5", "1764345604",
     NULL, "7b2261223a2278227d0d0a0900656e64", 16, "H+jyKEXWoLuqJj51fJEvJEwJhhX7RRIHBtfaTEQDxTw="},
    {"SDK S6 JSON escapes", "sdk-xcheck-secret", "01JDXCHECK00000000000000S6", "1764345605",
     "{\"reason\":\"\\u00e5 \\\"q\\\" a/b+c==\"}", NULL, 33,
     "JaEgeYxQ4iNtftr4ic3twsdslR+cwFEtJTIMvuB3zcs="},
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* The row's body bytes into buf; returns their count, or (size_t)-1 on a bad hex string. */
static size_t load_body(const struct vec *v, unsigned char buf[BODY_MAX])
{
    if (v->body) {
        size_t n = strlen(v->body);
        if (n > BODY_MAX) {
            return (size_t)-1;
        }
        memcpy(buf, v->body, n);
        return n;
    }
    size_t hex_len = strlen(v->body_hex);
    if (hex_len % 2 != 0 || hex_len / 2 > BODY_MAX) {
        return (size_t)-1;
    }
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hex_value(v->body_hex[2 * i]);
        int lo = hex_value(v->body_hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return (size_t)-1;
        }
        buf[i] = (unsigned char)(hi * 16 + lo);
    }
    return hex_len / 2;
}

/* Parses a row's timestamp for `now`; the rows' timestamps are plain digits. */
static int64_t ts_of(const char *ts)
{
    int64_t v = 0;
    for (; *ts; ts++) {
        v = v * 10 + (*ts - '0');
    }
    return v;
}

static void test_vectors(const struct vec *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct vec *v = &rows[i];
        unsigned char body[BODY_MAX];
        char out[SB_SIGNATURE_LEN + 1];
        size_t len = load_body(v, body);
        int64_t now = ts_of(v->timestamp);

        CHECKF(len == v->body_len, "%s: body is %zu bytes, want %zu", v->name, len, v->body_len);
        if (len != v->body_len) {
            continue;
        }
        enum sb_err err = sb_signature_compute(v->secret, body, len, v->nonce, v->timestamp, out);
        CHECKF(err == SB_OK, "%s: compute: %s", v->name, sb_err_name(err));
        CHECKF(strcmp(out, v->sig) == 0, "%s: computed %s, want %s", v->name, out, v->sig);
        CHECKF(strlen(out) == SB_SIGNATURE_LEN, "%s: length %zu", v->name, strlen(out));

        enum sb_sig_verdict got =
            sb_signature_verify(v->secret, body, len, v->nonce, v->timestamp, v->sig, now, SKEW);
        CHECKF(got == SB_SIG_OK, "%s: verify: %s", v->name, sb_sig_verdict_name(got));
        got = sb_signature_verify(v->secret, body, len, v->nonce, v->timestamp, v->sig, now, 0);
        CHECKF(got == SB_SIG_OK, "%s: verify, max_skew 0: %s", v->name, sb_sig_verdict_name(got));
    }
}

/* Guards against a mistyped vector B: its length and SHA-256 as the doc gives them. */
static void test_body_b_digest(void)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    char hex[65];

    CHECK(sizeof(BODY_B) - 1 == 539);
    CHECK(sizeof(BODY_A) - 1 == 322);
    CHECK(EVP_Digest(BODY_B, sizeof(BODY_B) - 1, md, &md_len, EVP_sha256(), NULL) == 1);
    CHECK(md_len == sizeof(md));
    for (size_t i = 0; i < sizeof(md); i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    CHECKF(strcmp(hex, BODY_B_SHA256) == 0, "SHA-256 of body B: %s", hex);
}

struct bad {
    const char *name;
    const char *secret;
    const char *body; /* text; NULL: the empty body passed as (NULL, 0) */
    const char *nonce;
    const char *timestamp;
    const char *sig;
    int64_t now;
    long max_skew;
    enum sb_sig_verdict want;
};

#define ROW_B(name, nonce, ts, sig, want)                                                          \
    {                                                                                              \
        name, SECRET_B, BODY_B, nonce, ts, sig, NOW_B, SKEW, want                                  \
    }
#define TS_ROW(name, ts, want) ROW_B(name, NONCE_B, ts, SIG_B, want)
#define SIG_ROW(name, sig)     ROW_B(name, NONCE_B, TS_B, sig, SB_SIG_MISMATCH)
#define NOW_ROW(name, now, skew, want)                                                             \
    {                                                                                              \
        name, SECRET_B, BODY_B, NONCE_B, TS_B, SIG_B, now, skew, want                              \
    }

static const struct bad bad_rows[] = {
    /* the raw body or nothing: each edit of it must fail (facts 8.2) */
    {"B + newline, B's signature", SECRET_B, BODY_B "\n", NONCE_B, TS_B, SIG_B, NOW_B, SKEW,
     SB_SIG_MISMATCH},
    {"B pretty-printed, B's signature", SECRET_B, BODY_B_PRETTY, NONCE_B, TS_B, SIG_B, NOW_B, SKEW,
     SB_SIG_MISMATCH},
    {"B's signature on vector A's body", SECRET_B, BODY_A, NONCE_B, TS_B, SIG_B, NOW_B, SKEW,
     SB_SIG_MISMATCH},
    {"C's signature on the empty body", SECRET_C, "", "abc123", "1700000000", SIG_C, 1700000000,
     SKEW, SB_SIG_MISMATCH},
    {"C's empty-body signature on C's body", SECRET_C, BODY_C, "abc123", "1700000000", SIG_C_EMPTY,
     1700000000, SKEW, SB_SIG_MISMATCH},
    {"C's signature, another nonce", SECRET_C, BODY_C, "abc124", "1700000000", SIG_C, 1700000000,
     SKEW, SB_SIG_MISMATCH},
    {"C's signature, another timestamp", SECRET_C, BODY_C, "abc123", "1700000001", SIG_C,
     1700000000, SKEW, SB_SIG_MISMATCH},

    /* headers: NULL (absent) and "" (empty) are both missing */
    ROW_B("no nonce", NULL, TS_B, SIG_B, SB_SIG_MISSING),
    ROW_B("empty nonce", "", TS_B, SIG_B, SB_SIG_MISSING),
    ROW_B("no timestamp", NONCE_B, NULL, SIG_B, SB_SIG_MISSING),
    ROW_B("empty timestamp", NONCE_B, "", SIG_B, SB_SIG_MISSING),
    ROW_B("no signature", NONCE_B, TS_B, NULL, SB_SIG_MISSING),
    ROW_B("empty signature", NONCE_B, TS_B, "", SB_SIG_MISSING),
    ROW_B("no headers at all", NULL, NULL, NULL, SB_SIG_MISSING),

    /* the order: missing, malformed, stale, mismatch */
    ROW_B("missing before malformed", NULL, "soon", SIG_B, SB_SIG_MISSING),
    ROW_B("missing before stale", NONCE_B, "1", "", SB_SIG_MISSING),
    ROW_B("malformed before mismatch", NONCE_B, "soon", "bogus", SB_SIG_MALFORMED),
    ROW_B("stale before mismatch", NONCE_B, "1", "bogus", SB_SIG_STALE),
    ROW_B("stale with a right signature", NONCE_B, "1718460000", SIG_B, SB_SIG_STALE),

    /* the signature: exact characters of standard, padded base64 */
    SIG_ROW("first character off", "WU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo="),
    SIG_ROW("middle character off", "VU1ImrOlQenR52g41VpIkcxhZUZmMvLLYyx1cKHq+Yo="),
    /* 'p' differs from 'o' only in the 2 unused bits: it decodes to the same MAC, so a verifier
     * that decodes and compares bytes would take it; we compare the text, like every SDK. */
    SIG_ROW("last character off (same bytes decoded)",
            "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yp="),
    SIG_ROW("no padding", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo"),
    SIG_ROW("one '=' too many", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo=="),
    SIG_ROW("one character short", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+o="),
    SIG_ROW("trailing newline", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo=\n"),
    SIG_ROW("leading space", " VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo="),
    SIG_ROW("lowercase", "vu1imrolqenr52g41vpikcxgzuzmmvllyyx1ckhq+yo="),
    SIG_ROW("uppercase", "VU1IMROLQENR52G41VPIKCXGZUZMMVLLYYX1CKHQ+YO="),
    SIG_ROW("hex of the MAC", "554d489ab3a541e9d1e76838d55a4891cc6065466632f2cb632c7570a1eaf98a"),
    SIG_ROW("hex of the MAC, upper case",
            "554D489AB3A541E9D1E76838D55A4891CC6065466632F2CB632C7570A1EAF98A"),
    SIG_ROW("base64url", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq-Yo="),
    SIG_ROW("base64url unpadded", "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq-Yo"),
    SIG_ROW("with the algorithm name", "HmacSHA256=VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo="),
    SIG_ROW("vector A's signature", "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk="),
    SIG_ROW("44 of the right length, all 'A'", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    SIG_ROW("one character", "V"),

    /* the timestamp: decimal digits only, at most 12 */
    TS_ROW("letter inside", "17184614a5", SB_SIG_MALFORMED),
    TS_ROW("letters only", "now", SB_SIG_MALFORMED),
    TS_ROW("plus sign", "+1718461425", SB_SIG_MALFORMED),
    TS_ROW("minus sign", "-1718461425", SB_SIG_MALFORMED),
    TS_ROW("leading space", " 1718461425", SB_SIG_MALFORMED),
    TS_ROW("trailing space", "1718461425 ", SB_SIG_MALFORMED),
    TS_ROW("space inside", "17184 61425", SB_SIG_MALFORMED),
    TS_ROW("trailing newline", "1718461425\n", SB_SIG_MALFORMED),
    TS_ROW("milliseconds (13 digits)", "1718461425000", SB_SIG_MALFORMED),
    TS_ROW("20 digits", "00000000001718461425", SB_SIG_MALFORMED),
    TS_ROW("hexadecimal", "0x6669a5f1", SB_SIG_MALFORMED),
    TS_ROW("fraction", "1718461425.0", SB_SIG_MALFORMED),
    TS_ROW("exponent", "1.718461425e9", SB_SIG_MALFORMED),
    TS_ROW("ISO 8601", "2024-06-15T14:23:45Z", SB_SIG_MALFORMED),
    TS_ROW("Arabic-Indic digit",
           "\xd9\xa1"
           "718461425",
           SB_SIG_MALFORMED),
    /* 12 digits are well-formed and in the window; the signature covers the text, so no */
    TS_ROW("12 digits, leading zeros", "001718461425", SB_SIG_MISMATCH),

    /* the window: |now - ts| <= max_skew */
    NOW_ROW("now = ts + max_skew", NOW_B + SKEW, SKEW, SB_SIG_OK),
    NOW_ROW("now = ts - max_skew", NOW_B - SKEW, SKEW, SB_SIG_OK),
    NOW_ROW("now = ts + max_skew + 1", NOW_B + SKEW + 1, SKEW, SB_SIG_STALE),
    NOW_ROW("now = ts - max_skew - 1", NOW_B - SKEW - 1, SKEW, SB_SIG_STALE),
    NOW_ROW("max_skew 0, 1 s late", NOW_B + 1, 0, SB_SIG_STALE),
    NOW_ROW("max_skew 0, 1 s early", NOW_B - 1, 0, SB_SIG_STALE),
    NOW_ROW("max_skew 86400, 1 day late", NOW_B + 86400, 86400, SB_SIG_OK),
    NOW_ROW("negative max_skew", NOW_B, -1, SB_SIG_STALE),
    NOW_ROW("now = 0", 0, SKEW, SB_SIG_STALE),
    NOW_ROW("now = INT64_MAX", INT64_MAX, SKEW, SB_SIG_STALE),
    NOW_ROW("now = INT64_MIN", INT64_MIN, SKEW, SB_SIG_STALE),
    NOW_ROW("now = INT64_MIN, max_skew LONG_MAX", INT64_MIN, LONG_MAX, SB_SIG_STALE),
    NOW_ROW("now = INT64_MAX, max_skew LONG_MAX", INT64_MAX, LONG_MAX, SB_SIG_OK),
    {"largest timestamp, now = INT64_MIN", SECRET_B, BODY_B, NONCE_B, "999999999999", SIG_B,
     INT64_MIN, SKEW, SB_SIG_STALE},
    {"largest timestamp, in the window", SECRET_B, BODY_B, NONCE_B, "999999999999", SIG_B,
     999999999999, SKEW, SB_SIG_MISMATCH},

    /* the secret: its bytes as they are */
    {"wrong secret", "my-webhook-secreT", BODY_B, NONCE_B, TS_B, SIG_B, NOW_B, SKEW,
     SB_SIG_MISMATCH},
    {"secret with a trailing newline", SECRET_B "\n", BODY_B, NONCE_B, TS_B, SIG_B, NOW_B, SKEW,
     SB_SIG_MISMATCH},
    {"empty secret", "", BODY_B, NONCE_B, TS_B, SIG_B, NOW_B, SKEW, SB_SIG_MISMATCH},
    {"no secret", NULL, BODY_B, NONCE_B, TS_B, SIG_B, NOW_B, SKEW, SB_SIG_MISMATCH},
    /* S4's secret base64-decoded ("sinch-bridge-secret"), as the Voice/Verification scheme
     * would: must not verify S4's signature */
    {"base64-decoded secret", "sinch-bridge-secret", BODY_C, NONCE_S4, TS_S4, SIG_S4, NOW_S4, SKEW,
     SB_SIG_MISMATCH},
    /* and the reverse: Node's createHmac('sha256', Buffer.from(SECRET_S4, 'base64')) over S4's
     * data (the SDK's validateWebhookSignature rejects it too) */
    {"signed with the base64-decoded secret", SECRET_S4, BODY_C, NONCE_S4, TS_S4,
     "XvqTrZuLIdYsXruGbOK82VUIZIfLt2OCr3l0FTi5BAc=", NOW_S4, SKEW, SB_SIG_MISMATCH},

    /* the empty body, passed as (NULL, 0) */
    {"empty body as NULL", SECRET_C, NULL, "abc123", "1700000000", SIG_C_EMPTY, 1700000000, SKEW,
     SB_SIG_OK},
    {"empty body as NULL, C's signature", SECRET_C, NULL, "abc123", "1700000000", SIG_C, 1700000000,
     SKEW, SB_SIG_MISMATCH},
};

static void test_bad_rows(void)
{
    for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
        const struct bad *r = &bad_rows[i];
        size_t len = r->body ? strlen(r->body) : 0;
        enum sb_sig_verdict got = sb_signature_verify(r->secret, r->body, len, r->nonce,
                                                      r->timestamp, r->sig, r->now, r->max_skew);
        CHECKF(got == r->want, "%s: %s, want %s", r->name, sb_sig_verdict_name(got),
               sb_sig_verdict_name(r->want));
    }
}

/* A NUL inside the body is data: the length given is what is signed, not strlen(). */
static void test_body_length_is_used(void)
{
    static const char body[] = "{\"a\":\"x\"}\r\n\t\0end"; /* row S5 */
    const char *sig = "H+jyKEXWoLuqJj51fJEvJEwJhhX7RRIHBtfaTEQDxTw=";
    const char *nonce = "01JDXCHECK00000000000000S5";

    CHECK(sb_signature_verify("sdk-xcheck-secret", body, sizeof(body) - 1, nonce, "1764345604", sig,
                              1764345604, SKEW) == SB_SIG_OK);
    CHECK(sb_signature_verify("sdk-xcheck-secret", body, strlen(body), nonce, "1764345604", sig,
                              1764345604, SKEW) == SB_SIG_MISMATCH);
}

/* A well-formed timestamp with leading zeros is signed as the text it is. */
static void test_round_trip(void)
{
    char out[SB_SIGNATURE_LEN + 1];

    CHECK(sb_signature_compute(SECRET_B, BODY_B, sizeof(BODY_B) - 1, NONCE_B, "001718461425",
                               out) == SB_OK);
    CHECK(strcmp(out, SIG_B) != 0);
    CHECK(sb_signature_verify(SECRET_B, BODY_B, sizeof(BODY_B) - 1, NONCE_B, "001718461425", out,
                              NOW_B, SKEW) == SB_SIG_OK);
}

static void test_compute_errors(void)
{
    char out[SB_SIGNATURE_LEN + 1];

    memset(out, 'x', sizeof(out));
    CHECK(sb_signature_compute(NULL, BODY_C, 13, "abc123", "1700000000", out) == SB_E_INVAL);
    CHECK(out[0] == '\0');
    memset(out, 'x', sizeof(out));
    CHECK(sb_signature_compute("", BODY_C, 13, "abc123", "1700000000", out) == SB_E_INVAL);
    CHECK(out[0] == '\0');
    CHECK(sb_signature_compute(SECRET_C, BODY_C, 13, NULL, "1700000000", out) == SB_E_INVAL);
    CHECK(sb_signature_compute(SECRET_C, BODY_C, 13, "abc123", NULL, out) == SB_E_INVAL);
    CHECK(sb_signature_compute(SECRET_C, NULL, 13, "abc123", "1700000000", out) == SB_E_INVAL);
    CHECK(sb_signature_compute(SECRET_C, BODY_C, 13, "abc123", "1700000000", NULL) == SB_E_INVAL);
    /* (NULL, 0) is the empty body */
    CHECK(sb_signature_compute(SECRET_C, NULL, 0, "abc123", "1700000000", out) == SB_OK);
    CHECKF(strcmp(out, SIG_C_EMPTY) == 0, "%s", out);
    /* a NULL body with a length never verifies */
    CHECK(sb_signature_verify(SECRET_C, NULL, 13, "abc123", "1700000000", SIG_C, 1700000000,
                              SKEW) == SB_SIG_MISMATCH);
}

static void test_names(void)
{
    CHECK_STR(sb_sig_verdict_name(SB_SIG_OK), "ok");
    CHECK_STR(sb_sig_verdict_name(SB_SIG_MISSING), "missing");
    CHECK_STR(sb_sig_verdict_name(SB_SIG_MALFORMED), "malformed");
    CHECK_STR(sb_sig_verdict_name(SB_SIG_STALE), "stale");
    CHECK_STR(sb_sig_verdict_name(SB_SIG_MISMATCH), "mismatch");
    CHECK_STR(sb_sig_verdict_name((enum sb_sig_verdict)99), "unknown");
}

/* sb_sha256_hex(): FIPS 180-2's "abc" and empty-message digests, lower-case hex. */
static void test_sha256_hex(void)
{
    char buf[65];
    const char *out = buf;

    memset(buf, 'z', sizeof(buf));
    sb_sha256_hex("abc", 3, buf);
    CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sb_sha256_hex("", 0, buf);
    CHECK_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    test_body_b_digest();
    test_vectors(doc_vectors, sizeof(doc_vectors) / sizeof(doc_vectors[0]));
    test_vectors(sdk_rows, sizeof(sdk_rows) / sizeof(sdk_rows[0]));
    test_bad_rows();
    test_body_length_is_used();
    test_round_trip();
    test_compute_errors();
    test_names();
    test_sha256_hex();
    return check_report();
}
