/* A stand-in for <ndpi_api.h> of several nDPI releases, reduced to what sensor/classify.c
 * calls, to syntax-check classify.c's compat branches without those releases installed:
 *
 *   for v in "4 2" "4 6" "4 10" "4 12" "4 14" "5 0"; do set -- $v
 *     cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wconversion -Werror -Iinclude \
 *        -isystem tests/data/classify/ndpi-mock -DMOCK_MAJOR=$1 -DMOCK_MINOR=$2 \
 *        -fsyntax-only sensor/classify.c || echo "nDPI $1.$2 branch broken"; done
 *
 * Written for this project from the signatures in nDPI's public headers (src/include/
 * ndpi_api.h and ndpi_typedefs.h of the releases named in classify.c's table) and in
 * nDPI's example/reader_util.c; types are simplified. It proves the branches are
 * consistent with that reading of the API, not that they link against a real release.
 */
#include <stdint.h>
#include <stddef.h>
typedef uint8_t u_int8_t; typedef uint16_t u_int16_t; typedef uint32_t u_int32_t; typedef uint64_t u_int64_t;
#define NDPI_MAJOR MOCK_MAJOR
#define NDPI_MINOR MOCK_MINOR
#define NDPI_PROTOCOL_UNKNOWN 0
typedef unsigned int u_int;
/* ndpi_protocol_ids.h: an enum there; the ids have been stable across these releases. */
enum { NDPI_PROTOCOL_MAIL_POPS = 23, NDPI_PROTOCOL_MAIL_SMTPS = 29, NDPI_PROTOCOL_MAIL_IMAPS = 51,
       NDPI_PROTOCOL_TLS = 91, NDPI_PROTOCOL_QUIC = 188, NDPI_PROTOCOL_DOH_DOT = 196 };
typedef enum { NDPI_PROTOCOL_CATEGORY_UNSPECIFIED = 0, NDPI_PROTOCOL_CATEGORY_MEDIA } ndpi_protocol_category_t;
struct ndpi_detection_module_struct; struct ndpi_flow_struct; struct ndpi_global_context;
#define MV (MOCK_MAJOR*100+MOCK_MINOR)
#if MV >= 412
typedef struct { u_int16_t master_protocol, app_protocol; } ndpi_master_app_protocol;
#endif
#if MV >= 500
typedef enum { NDPI_STATE_INSPECTING, NDPI_STATE_PARTIAL, NDPI_STATE_MONITORING, NDPI_STATE_CLASSIFIED } ndpi_classification_state;
#endif
typedef struct ndpi_proto {
#if MV >= 412
  ndpi_master_app_protocol proto;
#else
  u_int16_t master_protocol, app_protocol;
#endif
#if MV >= 404
  u_int16_t protocol_by_ip;
#endif
  ndpi_protocol_category_t category;
#if MV >= 500
  ndpi_classification_state state;
#endif
} ndpi_protocol;
#if MV >= 406
#define NDPI_IN_PKT_DIR_UNKNOWN 0
#define NDPI_IN_PKT_DIR_C_TO_S 1
#define NDPI_IN_PKT_DIR_S_TO_C 2
#define NDPI_FLOW_BEGINNING_UNKNOWN 0
struct ndpi_flow_input_info { unsigned char in_pkt_dir; unsigned char seen_flow_beginning; };
#endif
#if MV < 500
typedef struct { u_int32_t fds_bits[16]; } NDPI_PROTOCOL_BITMASK;
#define NDPI_BITMASK_SET_ALL(a) ((void)(a))
void ndpi_set_protocol_detection_bitmask2(struct ndpi_detection_module_struct *, const NDPI_PROTOCOL_BITMASK *);
u_int8_t ndpi_extra_dissection_possible(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *);
#endif
#if MV >= 410
struct ndpi_detection_module_struct *ndpi_init_detection_module(struct ndpi_global_context *g_ctx);
#else
typedef u_int32_t ndpi_init_prefs; enum { ndpi_no_prefs = 0 };
struct ndpi_detection_module_struct *ndpi_init_detection_module(ndpi_init_prefs prefs);
#endif
#if MV >= 500
int ndpi_finalize_initialization(struct ndpi_detection_module_struct *);
ndpi_protocol ndpi_detection_giveup(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *);
#elif MV >= 410
void ndpi_finalize_initialization(struct ndpi_detection_module_struct *);
ndpi_protocol ndpi_detection_giveup(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *, u_int8_t *);
#else
void ndpi_finalize_initialization(struct ndpi_detection_module_struct *);
ndpi_protocol ndpi_detection_giveup(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *, u_int8_t, u_int8_t *);
#endif
#if MV >= 406
ndpi_protocol ndpi_detection_process_packet(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *, const unsigned char *, const unsigned short, const u_int64_t, struct ndpi_flow_input_info *);
#else
ndpi_protocol ndpi_detection_process_packet(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *, const unsigned char *, const unsigned short, const u_int64_t);
#endif
void ndpi_exit_detection_module(struct ndpi_detection_module_struct *);
u_int32_t ndpi_detection_get_sizeof_ndpi_flow_struct(void);
void *ndpi_flow_malloc(size_t); void ndpi_flow_free(void *);
int ndpi_load_protocols_file(struct ndpi_detection_module_struct *, const char *);
char *ndpi_get_proto_name(struct ndpi_detection_module_struct *, u_int16_t);
typedef struct { u_int32_t protocol_id; ndpi_protocol_category_t protocol_category; int protocol_breed; } ndpi_protocol_match_result;
u_int16_t ndpi_match_host_subprotocol(struct ndpi_detection_module_struct *, struct ndpi_flow_struct *, char *, u_int, ndpi_protocol_match_result *, u_int16_t);
ndpi_protocol_category_t ndpi_get_proto_category(struct ndpi_detection_module_struct *, ndpi_protocol);
struct in_addr;
u_int16_t ndpi_network_ptree_match(struct ndpi_detection_module_struct *, struct in_addr *);
const char *ndpi_category_get_name(struct ndpi_detection_module_struct *, ndpi_protocol_category_t);
char *ndpi_revision(void);
