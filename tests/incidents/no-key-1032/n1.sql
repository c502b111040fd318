UPDATE heap.events SET msg = 'up' WHERE msg = 'ready';
