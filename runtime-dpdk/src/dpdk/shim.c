/* shim.c: the DPDK calls the Rust backend (src/dpdk/mod.rs) needs, as plain functions.
 *
 * rte_eth_rx_burst, rte_eth_tx_burst, rte_pktmbuf_alloc/free/append/mtod are static inline in
 * DPDK's headers, so Rust cannot call them directly. Everything here works on ONE port and ONE
 * queue pair, and is called from one thread only (the run-to-completion loop on the main
 * lcore): the static state below is not locked. Packets cross the boundary by copy, so no
 * mbuf pointer ever reaches Rust.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define HC_BURST 32
#define HC_MBUFS 8191
#define HC_DESC 1024

static struct rte_mempool *pool;
static uint16_t port_id;
static struct rte_mbuf *rx_pkts[HC_BURST];
static uint16_t rx_n, rx_i;
static struct rte_mbuf *tx_pkts[HC_BURST];
static uint16_t tx_n;
static uint64_t tx_dropped;

int hc_eal_init(int argc, char **argv) { return rte_eal_init(argc, argv); }

uint16_t hc_port_count(void) { return rte_eth_dev_count_avail(); }

/* Sets up port `port` with one RX and one TX queue; writes its MAC into mac_out[6]. */
int hc_port_setup(uint16_t port, uint8_t *mac_out) {
    struct rte_eth_conf conf;
    struct rte_ether_addr addr;
    int rc;
    memset(&conf, 0, sizeof conf);
    pool = rte_pktmbuf_pool_create("hc_pool", HC_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   (int)rte_socket_id());
    if (pool == NULL) return -rte_errno;
    port_id = port;
    if ((rc = rte_eth_dev_configure(port, 1, 1, &conf)) < 0) return rc;
    if ((rc = rte_eth_rx_queue_setup(port, 0, HC_DESC, rte_eth_dev_socket_id(port), NULL, pool)) < 0)
        return rc;
    if ((rc = rte_eth_tx_queue_setup(port, 0, HC_DESC, rte_eth_dev_socket_id(port), NULL)) < 0)
        return rc;
    if ((rc = rte_eth_dev_start(port)) < 0) return rc;
    /* Multicast frames must reach us; a PMD without these modes still floods on a bridge. */
    (void)rte_eth_promiscuous_enable(port);
    (void)rte_eth_allmulticast_enable(port);
    if ((rc = rte_eth_macaddr_get(port, &addr)) < 0) return rc;
    memcpy(mac_out, addr.addr_bytes, 6);
    return 0;
}

/* Copies the next received frame (at most cap bytes; longer ones are dropped) into buf.
 * Returns its length, 0 if none is waiting, -1 for a frame dropped as too long. */
int hc_rx(uint8_t *buf, uint16_t cap) {
    struct rte_mbuf *m;
    int len;
    if (rx_i == rx_n) {
        rx_i = 0;
        rx_n = rte_eth_rx_burst(port_id, 0, rx_pkts, HC_BURST);
        if (rx_n == 0) return 0;
    }
    m = rx_pkts[rx_i++];
    len = (int)rte_pktmbuf_pkt_len(m);
    if (m->nb_segs != 1 || len > cap) {
        rte_pktmbuf_free(m);
        return -1;
    }
    memcpy(buf, rte_pktmbuf_mtod(m, const uint8_t *), (size_t)len);
    rte_pktmbuf_free(m);
    return len;
}

/* Sends what is queued. Frames the queue does not take are freed and counted as dropped. */
void hc_tx_flush(void) {
    uint16_t sent, i;
    if (tx_n == 0) return;
    sent = rte_eth_tx_burst(port_id, 0, tx_pkts, tx_n);
    for (i = sent; i < tx_n; i++) rte_pktmbuf_free(tx_pkts[i]);
    tx_dropped += (uint64_t)(tx_n - sent);
    tx_n = 0;
}

/* Queues a copy of frame[0..len) (flushed when HC_BURST are queued or by hc_tx_flush).
 * Returns 0, or -ENOBUFS when no mbuf is free, -EMSGSIZE if it does not fit one. */
int hc_tx(const uint8_t *frame, uint16_t len) {
    struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
    char *p;
    if (m == NULL) return -ENOBUFS;
    p = rte_pktmbuf_append(m, len);
    if (p == NULL) {
        rte_pktmbuf_free(m);
        return -EMSGSIZE;
    }
    memcpy(p, frame, len);
    tx_pkts[tx_n++] = m;
    if (tx_n == HC_BURST) hc_tx_flush();
    return 0;
}

uint64_t hc_tx_dropped(void) { return tx_dropped; }
