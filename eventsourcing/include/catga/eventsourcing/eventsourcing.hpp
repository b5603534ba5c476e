#pragma once
// catga::eventsourcing in one include.
//
//   #include <catga/eventsourcing/eventsourcing.hpp>
//   auto store = catga::eventsourcing::EventStore::create(conn).value();

#include "catga/eventsourcing/aggregate.hpp"
#include "catga/eventsourcing/event_relay.hpp"
#include "catga/eventsourcing/event_store.hpp"
#include "catga/eventsourcing/projection.hpp"
#include "catga/eventsourcing/recorded_event.hpp"
#include "catga/eventsourcing/repository.hpp"
#include "catga/eventsourcing/snapshot.hpp"
#include "catga/eventsourcing/upcasters.hpp"
