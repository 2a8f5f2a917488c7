import threading
results = []
def work(i):
    results.append(sum(range(10000)) + i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(results))
