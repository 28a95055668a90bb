def f(item):
    return {"pk": str(item["pk"]), "v": item["v"]}
