#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H
// rabbitmq-c 0.11 (Debian 12) installs its headers directly in the include path; newer versions
// install them under rabbitmq-c/.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

// amqp_login is variadic, which Swift cannot call: this fixes its arguments to PLAIN login.
static inline amqp_rpc_reply_t crabbitmq_login_plain(amqp_connection_state_t state, const char *vhost,
                                                     int frame_max, int heartbeat, const char *user,
                                                     const char *password) {
    return amqp_login(state, vhost, 1, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// The method ids are macros with casts, which Swift does not import.
static const amqp_method_number_t CRABBITMQ_BASIC_ACK = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t CRABBITMQ_BASIC_NACK = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t CRABBITMQ_BASIC_RETURN = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t CRABBITMQ_CHANNEL_CLOSE = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t CRABBITMQ_CONNECTION_CLOSE = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_flags_t CRABBITMQ_CORRELATION_ID_FLAG = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t CRABBITMQ_CONTENT_TYPE_FLAG = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t CRABBITMQ_DELIVERY_MODE_FLAG = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t CRABBITMQ_MESSAGE_ID_FLAG = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t CRABBITMQ_TIMESTAMP_FLAG = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t CRABBITMQ_TYPE_FLAG = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t CRABBITMQ_HEADERS_FLAG = AMQP_BASIC_HEADERS_FLAG;
#endif
