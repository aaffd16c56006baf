// ns-3 (3.37) baseline for issue 17: the HovercRaft star of `hovercraft-sim bench`, built
// from ns-3's point-to-point, internet and applications modules, to compare simulator cost
// per delivered packet. Build and run with scripts/ns3-star.sh.
//
// Topology: one hub node (an IPv4 router standing in for the switch) and S servers plus C
// client machines, each on its own point-to-point link to the hub: 10 Gb/s, 1 us
// propagation delay, a DropTail device queue of --queue packets (default 1000; ns-3's own
// default of 100 overflows at the raft leader's port with 9 servers). By default the
// traffic-control layer's queue disc (FqCoDel, installed by Ipv4AddressHelper) is removed
// so packets go straight to the device queue (--qdisc keeps it). InternetStackHelper,
// Ipv4GlobalRoutingHelper for unicast, static multicast routes at the hub.
//
// Workload (UDP payload sizes; every packet is one UDP datagram):
//   clients: Poisson arrivals, rate/C each, 64 B requests; load stops at --duration, then
//            the simulation runs until no event is left (the drain is charged too).
//   hovercraft: the client sends each request once to the IPv4 multicast group 225.1.2.3;
//            the hub replicates it to all S servers (static multicast routes). The leader
//            (server 0) sequences it and sends one 32 B metadata packet (log index, client,
//            request id, commit index) per request to each follower; each follower answers
//            with a 16 B ack. Server (index mod S) replies with 64 B: the leader when a
//            majority holds the entry, a follower when a later metadata packet's commit
//            index covers it. Delivered per request: S + 2(S-1) + 1 = 3S packets.
//   raft:    the client sends the request to the leader only; the leader sends an 80 B
//            append (the 64 B request plus 16 B of index fields) per request to each
//            follower, each acks (16 B), the leader replies (64 B) on majority.
//            Delivered per request: 1 + 2(S-1) + 1 = 2S packets.
// Metric: packets received at the UDP sockets of servers and clients ("delivered").

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <vector>

using namespace ns3;

namespace
{

const uint16_t kPort = 9000;
const Ipv4Address kGroup("225.1.2.3");

enum MsgType : uint8_t
{
    REQ = 1,
    META = 2,
    ACK = 3,
    REPLY = 4,
};

// Fixed wire layout, copied into / out of the packet's bytes.
struct Msg
{
    uint8_t type;
    uint8_t pad[3];
    uint32_t client;   // client index
    uint64_t reqId;    // per-client request id, or log index for ACK
    uint64_t index;    // log index (META) / unused
    uint64_t commit;   // leader's commit index (META)
};

uint64_t g_delivered = 0; // packets received at an end host's UDP socket
uint64_t g_requests = 0;
uint64_t g_replies = 0;
uint64_t g_drops = 0;
uint64_t g_sent = 0; // datagrams that should reach an end host (a multicast one counts S times)
uint32_t g_servers = 0;

double
CpuSeconds()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

Ptr<Packet>
MakePacket(const Msg& m, uint32_t size)
{
    uint8_t buf[128] = {0};
    std::memcpy(buf, &m, sizeof(Msg) < size ? sizeof(Msg) : size);
    return Create<Packet>(buf, size);
}

bool
ReadMsg(Ptr<Packet> p, Msg& m)
{
    uint8_t buf[128];
    uint32_t n = p->CopyData(buf, sizeof(buf));
    if (n < 16)
    {
        return false;
    }
    std::memset(&m, 0, sizeof(m));
    std::memcpy(&m, buf, n < sizeof(Msg) ? n : sizeof(Msg));
    return true;
}

void
CountDrop(Ptr<const Packet>)
{
    ++g_drops;
}

class StarClient : public Application
{
  public:
    void Setup(uint32_t id, Address dest, double ratePerS, Time stop, uint32_t reqSize)
    {
        m_id = id;
        m_dest = dest;
        m_gap = CreateObject<ExponentialRandomVariable>();
        m_gap->SetAttribute("Mean", DoubleValue(1e9 / ratePerS)); // ns
        m_stopAt = stop;
        m_reqSize = reqSize;
    }

  private:
    void StartApplication() override
    {
        m_socket = Socket::CreateSocket(GetNode(), UdpSocketFactory::GetTypeId());
        m_socket->Bind(InetSocketAddress(Ipv4Address::GetAny(), kPort));
        m_socket->SetRecvCallback(MakeCallback(&StarClient::Recv, this));
        ScheduleNext();
    }

    void StopApplication() override
    {
    }

    void ScheduleNext()
    {
        Time next = NanoSeconds(m_gap->GetValue());
        if (Simulator::Now() + next < m_stopAt)
        {
            Simulator::Schedule(next, &StarClient::Send, this);
        }
    }

    void Send()
    {
        Msg m{};
        m.type = REQ;
        m.client = m_id;
        m.reqId = m_next++;
        m_socket->SendTo(MakePacket(m, m_reqSize), 0, m_dest);
        ++g_requests;
        g_sent += InetSocketAddress::ConvertFrom(m_dest).GetIpv4().IsMulticast() ? g_servers : 1;
        ScheduleNext();
    }

    void Recv(Ptr<Socket> s)
    {
        Ptr<Packet> p;
        while ((p = s->Recv()))
        {
            ++g_delivered;
            ++g_replies;
        }
    }

    uint32_t m_id = 0;
    Address m_dest;
    Ptr<ExponentialRandomVariable> m_gap;
    Time m_stopAt;
    uint32_t m_reqSize = 64;
    uint64_t m_next = 0;
    Ptr<Socket> m_socket;
};

class StarServer : public Application
{
  public:
    void Setup(uint32_t id,
               bool raft,
               std::vector<Ipv4Address> servers,
               std::vector<Ipv4Address> clients,
               uint32_t replySize)
    {
        m_id = id;
        m_raft = raft;
        m_servers = servers;
        m_clients = clients;
        m_replySize = replySize;
        m_n = servers.size();
        m_ring.resize(kRing);
    }

  private:
    static const uint64_t kRing = 1 << 16;

    struct Slot
    {
        uint32_t client;
        uint32_t acks;
        uint64_t reqId;
    };

    void StartApplication() override
    {
        m_socket = Socket::CreateSocket(GetNode(), UdpSocketFactory::GetTypeId());
        m_socket->Bind(InetSocketAddress(Ipv4Address::GetAny(), kPort));
        m_socket->SetRecvCallback(MakeCallback(&StarServer::Recv, this));
    }

    void StopApplication() override
    {
    }

    void Reply(uint32_t client, uint64_t reqId)
    {
        Msg r{};
        r.type = REPLY;
        r.client = client;
        r.reqId = reqId;
        m_socket->SendTo(MakePacket(r, m_replySize),
                         0,
                         InetSocketAddress(m_clients[client], kPort));
        ++g_sent;
    }

    void Recv(Ptr<Socket> s)
    {
        Ptr<Packet> p;
        Msg m;
        while ((p = s->Recv()))
        {
            ++g_delivered;
            if (!ReadMsg(p, m))
            {
                continue;
            }
            switch (m.type)
            {
            case REQ:
                if (m_id == 0)
                {
                    LeaderAppend(m);
                }
                // followers keep the multicast body; the metadata orders it
                break;
            case META:
                FollowerMeta(m);
                break;
            case ACK:
                LeaderAck(m.reqId);
                break;
            default:
                break;
            }
        }
    }

    void LeaderAppend(const Msg& req)
    {
        uint64_t idx = ++m_last;
        Slot& sl = m_ring[idx % kRing];
        sl.client = req.client;
        sl.reqId = req.reqId;
        sl.acks = 0;
        Msg meta{};
        meta.type = META;
        meta.client = req.client;
        meta.reqId = req.reqId;
        meta.index = idx;
        meta.commit = m_commit;
        // hovercraft: metadata only; raft: the request body travels in the append
        Ptr<Packet> pkt = MakePacket(meta, m_raft ? 80 : 32);
        for (uint32_t f = 1; f < m_n; ++f)
        {
            m_socket->SendTo(pkt->Copy(), 0, InetSocketAddress(m_servers[f], kPort));
            ++g_sent;
        }
        if (m_n == 1)
        {
            LeaderCommit(idx);
        }
    }

    void LeaderAck(uint64_t idx)
    {
        Slot& sl = m_ring[idx % kRing];
        ++sl.acks;
        // majority incl. the leader: acks + 1 >= n/2 + 1; commit each index once
        if (sl.acks == m_n / 2)
        {
            LeaderCommit(idx);
        }
    }

    void LeaderCommit(uint64_t idx)
    {
        if (idx > m_commit)
        {
            m_commit = idx;
        }
        const Slot& sl = m_ring[idx % kRing];
        if (m_raft || idx % m_n == 0)
        {
            Reply(sl.client, sl.reqId);
        }
    }

    void FollowerMeta(const Msg& meta)
    {
        Slot& sl = m_ring[meta.index % kRing];
        sl.client = meta.client;
        sl.reqId = meta.reqId;
        Msg ack{};
        ack.type = ACK;
        ack.reqId = meta.index;
        m_socket->SendTo(MakePacket(ack, 16), 0, InetSocketAddress(m_servers[0], kPort));
        ++g_sent;
        if (!m_raft)
        {
            // reply for the entries this server owns that the commit index now covers
            for (uint64_t i = m_applied + 1; i <= meta.commit && i <= meta.index; ++i)
            {
                if (i % m_n == m_id)
                {
                    const Slot& o = m_ring[i % kRing];
                    Reply(o.client, o.reqId);
                }
            }
            if (meta.commit > m_applied)
            {
                m_applied = meta.commit;
            }
        }
    }

    uint32_t m_id = 0;
    bool m_raft = false;
    uint32_t m_n = 1;
    uint32_t m_replySize = 64;
    std::vector<Ipv4Address> m_servers;
    std::vector<Ipv4Address> m_clients;
    std::vector<Slot> m_ring;
    uint64_t m_last = 0;    // leader: last log index
    uint64_t m_commit = 0;  // leader: commit index
    uint64_t m_applied = 0; // follower: highest commit index seen
    Ptr<Socket> m_socket;
};

} // namespace

int
main(int argc, char* argv[])
{
    double duration = 0.1;
    double rate = 1e6;
    uint32_t nServers = 5;
    uint32_t nClients = 4;
    std::string mode = "hovercraft";
    uint32_t seed = 1;
    bool qdisc = false;
    uint32_t size = 64;
    uint32_t queue = 1000;

    CommandLine cmd(__FILE__);
    cmd.AddValue("duration", "simulated seconds of load", duration);
    cmd.AddValue("rate", "requests per second, all clients together", rate);
    cmd.AddValue("servers", "server nodes", nServers);
    cmd.AddValue("clients", "client machines", nClients);
    cmd.AddValue("mode", "hovercraft (multicast requests) or raft (leader only)", mode);
    cmd.AddValue("seed", "ns-3 run number (RngSeedManager::SetRun)", seed);
    cmd.AddValue("qdisc", "keep the default FqCoDel queue disc on every device", qdisc);
    cmd.AddValue("size", "request and reply UDP payload bytes", size);
    cmd.AddValue("queue", "packets each point-to-point device queue holds", queue);
    cmd.Parse(argc, argv);
    if (mode != "hovercraft" && mode != "raft")
    {
        std::fprintf(stderr, "--mode must be hovercraft or raft\n");
        return 2;
    }
    bool raft = mode == "raft";
    if (size < 32 || size > 128)
    {
        std::fprintf(stderr, "--size must be in 32..128\n");
        return 2;
    }
    g_servers = nServers;
    RngSeedManager::SetSeed(1);
    RngSeedManager::SetRun(seed);

    double cpu0 = CpuSeconds();

    Ptr<Node> hub = CreateObject<Node>();
    NodeContainer servers;
    servers.Create(nServers);
    NodeContainer clients;
    clients.Create(nClients);
    NodeContainer all(hub);
    all.Add(servers);
    all.Add(clients);

    InternetStackHelper stack;
    stack.Install(all);

    PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", StringValue("10Gbps"));
    p2p.SetChannelAttribute("Delay", StringValue("1us"));
    p2p.SetQueue("ns3::DropTailQueue<Packet>",
                 "MaxSize",
                 QueueSizeValue(QueueSize(QueueSizeUnit::PACKETS, queue)));

    Ipv4AddressHelper addr;
    TrafficControlHelper tch;
    std::vector<Ipv4Address> serverAddr, clientAddr;
    NetDeviceContainer hubToServers;
    std::vector<Ptr<NetDevice>> hubToClient, clientDev;
    uint32_t subnet = 0;
    auto link = [&](Ptr<Node> host, bool isServer) {
        NetDeviceContainer d = p2p.Install(hub, host);
        char base[32];
        std::snprintf(base, sizeof(base), "10.%u.%u.0", 1 + subnet / 250, subnet % 250);
        ++subnet;
        addr.SetBase(base, "255.255.255.0");
        Ipv4InterfaceContainer ifs = addr.Assign(d);
        if (!qdisc)
        {
            tch.Uninstall(d);
        }
        for (uint32_t i = 0; i < 2; ++i)
        {
            d.Get(i)->TraceConnectWithoutContext("MacTxDrop", MakeCallback(&CountDrop));
            d.Get(i)->TraceConnectWithoutContext("PhyRxDrop", MakeCallback(&CountDrop));
        }
        if (isServer)
        {
            serverAddr.push_back(ifs.GetAddress(1));
            hubToServers.Add(d.Get(0));
        }
        else
        {
            clientAddr.push_back(ifs.GetAddress(1));
            hubToClient.push_back(d.Get(0));
            clientDev.push_back(d.Get(1));
        }
    };
    for (uint32_t i = 0; i < nServers; ++i)
    {
        link(servers.Get(i), true);
    }
    for (uint32_t i = 0; i < nClients; ++i)
    {
        link(clients.Get(i), false);
    }
    Ipv4GlobalRoutingHelper::PopulateRoutingTables();

    if (!raft)
    {
        // The hub replicates each client's multicast request to every server port.
        Ipv4StaticRoutingHelper mcast;
        for (uint32_t c = 0; c < nClients; ++c)
        {
            mcast.AddMulticastRoute(hub, clientAddr[c], kGroup, hubToClient[c], hubToServers);
            mcast.SetDefaultMulticastRoute(clients.Get(c), clientDev[c]);
        }
    }

    Time stop = Seconds(duration);
    for (uint32_t i = 0; i < nServers; ++i)
    {
        Ptr<StarServer> app = CreateObject<StarServer>();
        app->Setup(i, raft, serverAddr, clientAddr, size);
        servers.Get(i)->AddApplication(app);
        app->SetStartTime(Seconds(0));
    }
    for (uint32_t c = 0; c < nClients; ++c)
    {
        Ptr<StarClient> app = CreateObject<StarClient>();
        Address dest = raft ? InetSocketAddress(serverAddr[0], kPort)
                            : InetSocketAddress(kGroup, kPort);
        app->Setup(c, dest, rate / nClients, stop, size);
        clients.Get(c)->AddApplication(app);
        app->SetStartTime(Seconds(0));
    }

    double cpu1 = CpuSeconds();
    Simulator::Run(); // until no event is left: the load, then the drain
    double cpu2 = CpuSeconds();
    double simEnd = Simulator::Now().GetSeconds();
    uint64_t events = Simulator::GetEventCount();
    Simulator::Destroy();

    double cpuRun = cpu2 - cpu1;
    double cpuAll = cpu2 - cpu0;
    std::printf("ns-3 %s star: %u servers, %u clients, %.0f req/s, %u B, qdisc=%s, run %u\n",
                mode.c_str(),
                nServers,
                nClients,
                rate,
                size,
                qdisc ? "fqcodel" : "none",
                seed);
    std::printf("simulated seconds   %.6f (load %.6f, last event %.6f)\n",
                duration,
                duration,
                simEnd);
    std::printf("requests sent       %lu\n", (unsigned long)g_requests);
    std::printf("replies received    %lu\n", (unsigned long)g_replies);
    std::printf("packets delivered   %lu (%.2f per request)\n",
                (unsigned long)g_delivered,
                g_requests ? (double)g_delivered / g_requests : 0.0);
    // lost: sent to a host but not received there, whether a device traced the drop or
    // the traffic-control layer discarded it silently on a stopped device queue
    std::printf("packets lost        %lu (device drop traces %lu)\n",
                (unsigned long)(g_sent - g_delivered),
                (unsigned long)g_drops);
    std::printf("events              %lu\n", (unsigned long)events);
    std::printf("cpu seconds         %.3f (Simulator::Run %.3f, setup %.3f)\n",
                cpuAll,
                cpuRun,
                cpu1 - cpu0);
    std::printf("cpu s per sim s     %.2f (Run only %.2f)\n", cpuAll / duration, cpuRun / duration);
    std::printf("packets per cpu s   %.0f (Run only %.0f)\n",
                g_delivered / cpuAll,
                g_delivered / cpuRun);
    return 0;
}
